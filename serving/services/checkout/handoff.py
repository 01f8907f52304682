"""Handing a batch's outcomes back: each order's answer to its request's event loop, and the
batch's events to the event log, with one wake-up per loop and one hand-over per log.

The batch threads run outside the requests' event loops; this is their only way back.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from serving.core import clock
from serving.services.checkout.batch_rows import Job
from serving.services.checkout.steps import Outcome

log = logging.getLogger("storeloop.checkout.batch")


def on_clock(job: Job, fn: Any, *args: Any) -> None:
    """Run ``fn`` in a pool thread with the job's request clock."""
    token = clock.set_simulated_now(job.clock)
    try:
        fn(*args)
    finally:
        clock.reset_simulated_now(token)


def deliver_call(job: Job, fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        result: Outcome | BaseException = fn(*args, **kwargs)
    except Exception as exc:
        result = exc
    deliver(job, result)


def deliver_all(results: list[tuple[Job, Outcome | BaseException]]) -> None:
    """:func:`deliver` for many jobs with one wake-up per event loop (each wake-up of a loop
    from another thread is a write to its self-pipe)."""
    by_loop: dict[Any, list[tuple[Job, Outcome | BaseException]]] = defaultdict(list)
    for job, result in results:
        by_loop[job.loop].append((job, result))
    for loop, items in by_loop.items():

        def deliver(items: list = items) -> None:
            for job, result in items:
                _deliver_now(job, result)

        try:
            loop.call_soon_threadsafe(deliver)
        except RuntimeError:  # pragma: no cover - the loop closed while the orders ran
            log.warning("%d orders finished after their event loop closed", len(items))


def _deliver_now(job: Job, result: Outcome | BaseException) -> None:
    if job.future.done():  # the client went away; the order stands regardless
        return
    if isinstance(result, BaseException):
        job.future.set_exception(result)
    else:
        job.future.set_result(result)


def emit_all(events: list[tuple[Job, str, dict[str, Any]]]) -> None:
    """Log the batch's events with one hand-over to each event log, not one per event.

    Jobs whose sink cannot build records (tests' ``NoEvents``) emit one by one."""
    by_log: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for job, event_type, fields in events:
        sink = job.events
        records = getattr(sink, "records", None)
        target = getattr(sink, "log", None)
        try:
            if records is None:
                sink.emit(event_type, **fields)
            elif target is not None:
                by_log[target].append(records(event_type, **fields))
        except Exception:
            log.exception("could not log %s", event_type)
    for target, records in by_log.items():
        try:
            target.submit(records).add_done_callback(_report_failure)
        except Exception:
            log.exception("could not log %d checkout events", len(records))


def _report_failure(future: Any) -> None:
    if future.exception() is not None:
        log.error("event log write failed: %s", future.exception())


def deliver(job: Job, result: Outcome | BaseException) -> None:
    """Hand the outcome (or the error to raise) to the waiting request, on its loop."""

    try:
        job.loop.call_soon_threadsafe(_deliver_now, job, result)
    except RuntimeError:  # pragma: no cover - the loop closed while the order ran
        log.warning("order %s finished after its request's event loop closed", job.order_id)
