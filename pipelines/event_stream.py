"""Landing the shared event stream (NATS JetStream) as closed segments the lake already reads.

Why land instead of reading the stream straight into Parquet: the raw layer's contract is
"closed segments, de-duplicated by ``event_id``, partitioned by ``server_ts``", and everything
downstream (quarantine, the sensor, the kill drill) is built on it. Landing keeps one path
into the lake. A durable pull consumer hands out messages; each fetched batch is written as one
immutable segment (fsynced, then renamed into place) and only then acknowledged. A crash
between the two makes the server deliver the batch again, which lands a second segment with
the same event ids; ``extract_events`` keeps the first copy of every id, so re-delivery never
duplicates a row in the lake.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from features.event_stream import (
    DEFAULT_DURABLE,
    DEFAULT_STREAM,
    ensure_stream,
    import_nats,
    subject,
)
from features.events import CLOSED_SUFFIX

#: A batch not acknowledged within this long (a killed landing) is delivered again.
ACK_WAIT_SECONDS = 60.0


@dataclass
class LandResult:
    """What one landing pass took from the stream."""

    messages: int = 0
    lines: int = 0
    redelivered: int = 0  # messages the server had delivered before (a killed earlier pass)
    segments: list[Path] = field(default_factory=list)
    first_seq: int | None = None
    last_seq: int | None = None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_landed_segment(events_dir: Path, stream: str, first: int, last: int, data: bytes) -> Path:
    """Write ``data`` as a closed segment, durably, under a name no live writer uses.

    The name starts with the landing time like every segment (the sensor's cursor sorts by
    it) and carries the stream sequence range, so the same batch landed twice in one second
    lands on the same name with the same bytes.
    """
    events_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    stem = f"{stamp}-stream_{stream}-{first:012d}-{last:012d}"
    path = events_dir / f"{stem}{CLOSED_SUFFIX}"
    tmp = events_dir / f".{stem}.{os.getpid()}.landing"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.fchmod(fd, 0o444)  # closed segments are read-only, as the writer leaves them
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(events_dir)
    return path


async def _land(
    url: str,
    stream: str,
    durable: str,
    events_dir: Path,
    batch: int,
    max_messages: int | None,
    ack_wait: float,
) -> LandResult:
    nats = import_nats()
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    result = LandResult()
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3, name="storeloop-lake")
    try:
        js = nc.jetstream(timeout=10)
        await ensure_stream(js, stream)
        sub = await js.pull_subscribe(
            subject(stream),
            durable=durable,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait,
                max_ack_pending=-1,
            ),
        )
        while max_messages is None or result.messages < max_messages:
            want = batch if max_messages is None else min(batch, max_messages - result.messages)
            try:
                msgs = await sub.fetch(want, timeout=1.0)
            except (NatsTimeout, TimeoutError):  # nothing (more) to deliver
                break
            if not msgs:
                break
            seqs = [m.metadata.sequence.stream for m in msgs]
            data = b"".join(m.data if m.data.endswith(b"\n") else m.data + b"\n" for m in msgs)
            path = await asyncio.to_thread(
                write_landed_segment, events_dir, stream, min(seqs), max(seqs), data
            )
            for m in msgs:  # only now: the batch is on disk
                await m.ack()
            await nc.flush()
            result.segments.append(path)
            result.messages += len(msgs)
            result.lines += data.count(b"\n")
            result.redelivered += sum(1 for m in msgs if m.metadata.num_delivered > 1)
            result.first_seq = min(seqs) if result.first_seq is None else result.first_seq
            result.last_seq = max(seqs)
    finally:
        await nc.close()
    return result


def land_stream(
    url: str,
    events_dir: Path | str,
    *,
    stream: str = DEFAULT_STREAM,
    durable: str = DEFAULT_DURABLE,
    batch: int = 5_000,
    max_messages: int | None = None,
    ack_wait: float = ACK_WAIT_SECONDS,
) -> LandResult:
    """Land everything the durable consumer has not acknowledged yet; returns what it took.

    ``ack_wait`` only applies when this call creates the consumer (its first pass).
    """
    return asyncio.run(_land(url, stream, durable, Path(events_dir), batch, max_messages, ack_wait))


def pending_messages(
    url: str, stream: str = DEFAULT_STREAM, durable: str = DEFAULT_DURABLE
) -> int | None:
    """Messages the lake's consumer has not been delivered yet (None before its first pass)."""

    async def ask() -> int | None:
        nats = import_nats()
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            try:
                info = await nc.jetstream(timeout=5).consumer_info(stream, durable)
            except NotFoundError:
                return None
            return int(info.num_pending) + int(info.num_ack_pending)
        finally:
            await nc.close()

    return asyncio.run(ask())
