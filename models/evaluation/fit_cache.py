"""Fitted models shared between tuning, the blend's weight search and the final scoring.

The blend's components are fitted with their tuned params on inner-train (to learn the
weights) and on train (the blend itself), but tuning and the per-model scoring have already
fitted exactly those models on exactly those matrices. Refitting them cost about 4 CPU
seconds of Last.fm's run (EASE's M and two ALS fits per matrix). The cache hands back the
same fitted object, so the figures are unchanged, not approximately equal.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from features.interactions import Interactions
from models.base import Recommender
from models.factory import build_model

#: Upper bound of the arrays kept (a primal EASE over 20,000 items alone is 1.6 GB: not kept).
MAX_BYTES = 512 << 20


class FitCache:
    """Models fitted by (name, full params, training matrix), for the names that get reused.

    Parameters
    ----------
    names : iterable of str
        Models worth keeping (the components of a requested blend); others are fitted and
        returned without being kept.
    max_bytes : int
        Least recently used entries go first past this many bytes of learned arrays; a model
        larger than it on its own is never kept.
    """

    def __init__(self, names: Iterable[str] = (), max_bytes: int = MAX_BYTES) -> None:
        self.names = frozenset(names)
        self.max_bytes = max_bytes
        self.hits = 0
        self._models: OrderedDict[tuple, tuple[Interactions, Recommender, int]] = OrderedDict()

    def fit(self, name: str, params: dict[str, Any], interactions: Interactions) -> Recommender:
        """A model ``name`` with ``params`` fitted on ``interactions`` (cached when reused)."""
        model = build_model(name, **params)
        if name == "blend":
            model.component_source = self.fit  # type: ignore[attr-defined]
        if name not in self.names:
            return model.fit(interactions)
        key = (name, _params_key(model.get_params()), id(interactions))
        hit = self._models.get(key)
        if hit is not None:
            self._models.move_to_end(key)
            self.hits += 1
            return hit[1]
        model.fit(interactions)
        size = sum(int(a.nbytes) for a in model._state().values())
        if size <= self.max_bytes:
            # The matrix is kept with the model so that its id is never reused for another.
            self._models[key] = (interactions, model, size)
            while sum(entry[2] for entry in self._models.values()) > self.max_bytes:
                self._models.popitem(last=False)
        return model


def _params_key(params: dict[str, Any]) -> str:
    """Params as a canonical string (nested dicts and lists included)."""
    return json.dumps(params, sort_keys=True, default=str)
