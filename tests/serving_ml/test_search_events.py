"""Search records reach the event log in batches: after a short delay, when a batch is full,
and at shutdown."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from serving.services.ml.search_events import SearchEvents


class FakeLog:
    def __init__(self) -> None:
        self.batches: list[list[dict]] = []

    def submit(self, records):
        self.batches.append(list(records))
        done: Future[None] = Future()
        done.set_result(None)
        return done


def test_records_are_submitted_in_batches():
    async def scenario() -> list[list[dict]]:
        log = FakeLog()
        events = SearchEvents(log, delay=0.01, max_batch=3)
        for i in range(4):  # three fill a batch at once, the fourth waits for the timer
            events.add({"n": i})
        assert [len(b) for b in log.batches] == [3]
        await asyncio.sleep(0.05)
        events.add({"n": 4})
        events.flush()  # shutdown: nothing left behind
        events.flush()
        return log.batches

    batches = asyncio.run(scenario())
    assert [[r["n"] for r in b] for b in batches] == [[0, 1, 2], [3], [4]]
