"""One progress bar over a simulation run: catalog loading, then the shoppers' visits."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress"]


class Progress:
    """One tqdm bar over catalog loading and visits (totals are known up front)."""

    def __init__(self, config: Any, *, enabled: bool, world: Any = None) -> None:
        self.config = config
        self.enabled = enabled
        self.world = world
        self.bar: Any = None

    def __enter__(self) -> Progress:
        if not self.enabled:
            return self
        from dataclasses import replace

        from tqdm import tqdm

        from simulation.runner import build_world, day_schedule

        _, pop, _ = self.world or build_world(self.config)
        every = replace(self.config, shard=0, shards=1)
        sessions = sum(
            sum(len(s) for s in day_schedule(every, pop, d).values())
            for d in range(self.config.days)
        )
        self.bar = tqdm(
            total=self.config.products + sessions, unit="step", desc="loading", file=sys.stderr
        )
        return self

    def update(self, kind: str, n: int) -> None:
        if self.bar is not None and n:
            if kind == "session" and self.bar.desc != "shopping":
                self.bar.set_description("shopping")
            self.bar.update(n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
