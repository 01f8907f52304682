"""EventLog: the append-only, group-committed writer behind POST /api/v1/events.

Why group commit: an fsync costs about a millisecond or more, so one fsync per request would
cap the shop at a few hundred batches a second. Instead callers hand their encoded lines to one
writer thread and wait; the thread takes everything queued since its last round, writes it with
one ``write`` and makes it durable with one ``fdatasync``, then wakes all of those callers. The
more concurrent requests, the bigger the groups, so throughput grows with load while each
acknowledged event is still on disk before its 2xx goes out.

With a shared stream (``EVENTS_URL``, see ``stream.py``) the same group is published to NATS
JetStream instead of, or as well as, the local segment, and each caller is woken only once the
stream server acknowledged its lines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.eventlog.records import encode_lines, server_record
from serving.eventlog.segments import OpenSegment, SegmentNamer, recover_stale_segments
from serving.eventlog.stream import DEFAULT_STREAM, EventStream

log = logging.getLogger(__name__)

DEFAULT_SEGMENT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_SEGMENT_MAX_SECONDS = 300.0
DEFAULT_MAX_PENDING_BYTES = 64 * 1024 * 1024


class EventLogError(RuntimeError):
    """The log could not take the events; nothing from that call is acknowledged."""


class EventLogClosed(EventLogError):
    """The log was closed (shutdown); the caller should answer 503."""


class EventLogOverloaded(EventLogError):
    """Too many bytes are waiting for the disk; the caller should shed load (503)."""


@dataclass
class _Pending:
    data: bytes
    count: int
    future: Future[None] = field(default_factory=Future)


@dataclass
class EventLogStats:
    """Counters for /metrics; plain ints updated by the writer thread only."""

    events_written: int = 0
    bytes_written: int = 0
    commits: int = 0
    segments_closed: int = 0
    stale_segments_recovered: int = 0
    write_errors: int = 0
    stream_errors: int = 0


class EventLog:
    """Append-only event log in ``events_dir`` with size- and time-based segment rotation.

    Thread-safe. ``append``/``emit`` block until the events are durable; ``append_async`` and
    ``emit_async`` let async routes await the same commit without blocking the event loop.
    """

    def __init__(
        self,
        events_dir: Path | str,
        *,
        segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES,
        segment_max_seconds: float = DEFAULT_SEGMENT_MAX_SECONDS,
        max_pending_bytes: int = DEFAULT_MAX_PENDING_BYTES,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        stream: EventStream | None = None,
        local_segments: bool = True,
    ) -> None:
        if stream is None and not local_segments:
            raise ValueError("an event log needs local segments, a stream, or both")
        if segment_max_bytes <= 0 or segment_max_seconds <= 0:
            raise ValueError("segment limits must be positive")
        self.events_dir = Path(events_dir)
        self.events_dir.mkdir(parents=True, exist_ok=True)
        self.segment_max_bytes = segment_max_bytes
        self.segment_max_seconds = segment_max_seconds
        self.max_pending_bytes = max_pending_bytes
        self.stats = EventLogStats()
        self.stream = stream
        self.local_segments = local_segments
        self._clock = clock
        self._wall_clock = wall_clock
        self._namer = SegmentNamer.for_this_process()
        self._segment: OpenSegment | None = None
        self._queue: list[_Pending] = []
        self._queued_bytes = 0
        self._closing = False
        self._cond = threading.Condition()
        self.stats.stale_segments_recovered += len(recover_stale_segments(self.events_dir))
        self._thread = threading.Thread(target=self._run, name="eventlog-writer", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Any) -> EventLog:
        """Build the log the app uses: ``settings.layout.events`` and the segment limits,
        plus the shared stream when ``EVENTS_URL`` is set (segments then only if asked for)."""
        url = getattr(settings, "events_url", None)
        stream = None
        if url:
            stream = EventStream(
                url,
                getattr(settings, "events_stream", None) or DEFAULT_STREAM,
                publish_timeout=getattr(settings, "events_publish_timeout_seconds", None) or 5.0,
            )
        try:
            return cls(
                settings.layout.events,
                segment_max_bytes=getattr(settings, "event_segment_max_bytes", None)
                or DEFAULT_SEGMENT_MAX_BYTES,
                segment_max_seconds=getattr(settings, "event_segment_max_seconds", None)
                or DEFAULT_SEGMENT_MAX_SECONDS,
                stream=stream,
                local_segments=stream is None
                or bool(getattr(settings, "events_local_segments", False)),
            )
        except BaseException:
            if stream is not None:
                stream.close()
            raise

    # ---------------------------------------------------------------- public API

    @property
    def events_written(self) -> int:
        return self.stats.events_written

    @property
    def bytes_written(self) -> int:
        return self.stats.bytes_written

    @property
    def current_segment(self) -> Path | None:
        """The ``.open`` file being appended to, if any (for tests and diagnostics)."""
        segment = self._segment
        return segment.path if segment is not None else None

    def submit(self, records: Iterable[dict[str, Any]]) -> Future[None]:
        """Queue records for the next group commit; the future resolves once they are durable.

        Encoding happens here, in the caller's thread, so a record that cannot be encoded
        fails its own call and never reaches the file.
        """
        records = list(records)
        data = encode_lines(records)
        pending = _Pending(data=data, count=len(records))
        if not records:
            pending.future.set_result(None)
            return pending.future
        with self._cond:
            if self._closing:
                raise EventLogClosed("the event log is closed")
            if self._queued_bytes + len(data) > self.max_pending_bytes and self._queue:
                raise EventLogOverloaded("the event log is behind; try again shortly")
            self._queue.append(pending)
            self._queued_bytes += len(data)
            self._cond.notify()
        return pending.future

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records and return once they are on disk (raises EventLogError otherwise)."""
        self.submit(records).result()

    async def append_async(self, records: Iterable[dict[str, Any]]) -> None:
        """Like ``append`` but awaits the commit, leaving the event loop free meanwhile."""
        await asyncio.wrap_future(self.submit(records))

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Write one server domain event durably; returns the stored record."""
        record = server_record(type, self._wall_clock(), **fields)
        self.append([record])
        return record

    async def emit_async(self, type: str, **fields: Any) -> dict[str, Any]:
        """``emit`` for async code: awaits durability without blocking the event loop."""
        record = server_record(type, self._wall_clock(), **fields)
        await self.append_async([record])
        return record

    def close(self, timeout: float | None = 30.0) -> None:
        """Commit everything already queued, close the open segment, stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self.stream is not None:
            self.stream.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---------------------------------------------------------------- writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(timeout=self._idle_timeout())
                group, self._queue = self._queue, []
                self._queued_bytes = 0
                closing = self._closing
            # Disk work happens outside the lock so callers can keep queueing meanwhile.
            if group:
                self._commit(group)
            elif closing:
                self._close_segment()
                return
            else:
                self._rotate_if_old()

    def _idle_timeout(self) -> float | None:
        """Wake up when the open segment reaches its age limit, so idle logs still rotate."""
        segment = self._segment
        if segment is None:
            return None
        remaining = segment.opened_at + self.segment_max_seconds - self._clock()
        return max(0.0, remaining) + 0.001

    def _rotate_if_old(self) -> None:
        segment = self._segment
        if segment is not None and self._clock() - segment.opened_at >= self.segment_max_seconds:
            self._close_segment()

    def _commit(self, group: list[_Pending]) -> None:
        if self.stream is not None:
            group = self._publish(group)
        if not group:
            return
        if not self.local_segments:
            self._acknowledge(group, sum(len(item.data) for item in group))
            return
        data = b"".join(item.data for item in group)
        try:
            segment = self._segment_for(len(data))
            segment.write(data)
            segment.sync()
        except BaseException as exc:
            self.stats.write_errors += 1
            log.exception("event log write failed; %d events not acknowledged", len(group))
            self._abandon_segment()
            error = EventLogError(f"could not write events: {exc}")
            for item in group:
                item.future.set_exception(error)
            return
        self._acknowledge(group, len(data))
        segment = self._segment
        if segment is not None and (
            segment.size >= self.segment_max_bytes
            or self._clock() - segment.opened_at >= self.segment_max_seconds
        ):
            self._close_segment()

    def _publish(self, group: list[_Pending]) -> list[_Pending]:
        """Publish each caller's lines; fail those the stream did not store, return the rest."""
        assert self.stream is not None
        results = self.stream.publish([item.data for item in group])
        stored = []
        for item, error in zip(group, results, strict=True):
            if error is None:
                stored.append(item)
                continue
            self.stats.stream_errors += 1
            item.future.set_exception(EventLogError(f"could not publish events: {error}"))
        if len(stored) < len(group):
            log.error(
                "event stream: %d of %d publishes failed", len(group) - len(stored), len(group)
            )
        return stored

    def _acknowledge(self, group: list[_Pending], nbytes: int) -> None:
        self.stats.events_written += sum(item.count for item in group)
        self.stats.bytes_written += nbytes
        self.stats.commits += 1
        for item in group:
            item.future.set_result(None)

    def _segment_for(self, incoming: int) -> OpenSegment:
        """The segment to write ``incoming`` bytes to, rotating first if it would overflow."""
        segment = self._segment
        if segment is not None and (
            (segment.size > 0 and segment.size + incoming > self.segment_max_bytes)
            or self._clock() - segment.opened_at >= self.segment_max_seconds
        ):
            self._close_segment()
            segment = None
        if segment is None:
            segment = self._open_segment()
        return segment

    def _open_segment(self) -> OpenSegment:
        for _attempt in range(3):
            stem = self._namer.next_stem(self._wall_clock())
            try:
                self._segment = OpenSegment(self.events_dir, stem, self._clock())
                return self._segment
            except FileExistsError:
                continue
        raise EventLogError("could not create a new segment file")

    def _close_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is None:
            return
        try:
            if segment.close() is not None:
                self.stats.segments_closed += 1
        except OSError:
            log.exception("could not close event segment %s", segment.path.name)
        # A good moment to tidy up after workers that died since we started.
        try:
            self.stats.stale_segments_recovered += len(recover_stale_segments(self.events_dir))
        except OSError:
            log.exception("could not recover stale event segments")

    def _abandon_segment(self) -> None:
        """After a failed write, stop using the segment; it holds only acknowledged lines."""
        self._close_segment()
