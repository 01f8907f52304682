"""Benchmark: durable event appends to the shared NATS JetStream stream vs local segments.

The writer (``serving.eventlog.EventLog``) in this process, ``--threads`` callers appending
batches of ``--batch`` events as the route does; each append returns once its events are
durable: fdatasync'd in a local segment (the same-run baseline) or stored by the JetStream
server (publish ack; the server here keeps file storage on the same disk). Afterwards the
stream is read back and every acknowledged event must be in it exactly once.

Run: ``.venv/bin/python bench/bench_event_stream.py [--seconds 8] [--threads 16]``;
needs NATS with JetStream at ``$EVENTS_URL`` (default nats://127.0.0.1:4222); writes
``bench/results/event_stream.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from serving.eventlog import EventLog  # noqa: E402
from serving.eventlog.records import server_record  # noqa: E402
from serving.eventlog.stream import EventStream  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "event_stream.json"


def run(log: EventLog, seconds: float, threads: int, batch: int) -> dict:
    acknowledged: list[list[str]] = [[] for _ in range(threads)]
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def caller(slot: int) -> None:
        while time.monotonic() < stop:
            records = [server_record("cart_add", time.time(), product_id=i) for i in range(batch)]
            started = time.perf_counter()
            log.append(records)
            latencies.append(time.perf_counter() - started)
            acknowledged[slot].extend(r["event_id"] for r in records)

    workers = [threading.Thread(target=caller, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    ids = [i for chunk in acknowledged for i in chunk]
    latencies.sort()
    return {
        "events": len(ids),
        "events_per_second": len(ids) / elapsed,
        "append_p50_ms": 1000 * latencies[len(latencies) // 2],
        "append_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "ids": ids,
    }


async def stream_ids(url: str, stream: str) -> list[str]:
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        # No acks: an ack-explicit consumer stops delivering at max_ack_pending unacked messages.
        sub = await js.pull_subscribe(
            f"{stream}.events", stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE)
        )
        out: list[str] = []
        while True:
            try:
                msgs = await sub.fetch(1000, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            for m in msgs:
                out.extend(orjson.loads(line)["event_id"] for line in m.data.splitlines())
        await js.delete_stream(stream)
        return out
    finally:
        await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("EVENTS_URL", "nats://127.0.0.1:4222")
    stream = f"storeloop_bench_{secrets.token_hex(4)}"
    result: dict = {"threads": args.threads, "batch": args.batch, "load": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        with EventLog(Path(tmp) / "segments") as log:
            result["segments"] = run(log, args.seconds, args.threads, args.batch)
        with EventLog(
            Path(tmp) / "unused", stream=EventStream(url, stream), local_segments=False
        ) as log:
            result["stream"] = run(log, args.seconds, args.threads, args.batch)
    stored = asyncio.run(stream_ids(url, stream))
    acked = result["stream"].pop("ids")
    result["segments"].pop("ids")
    result["stream"]["acknowledged_missing"] = len(set(acked) - set(stored))
    result["stream"]["stored_twice"] = len(stored) - len(set(stored))
    result["stream_over_segments"] = (
        result["stream"]["events_per_second"] / result["segments"]["events_per_second"]
    )
    result["load_after"] = os.getloadavg()
    for kind in ("segments", "stream"):
        r = result[kind]
        print(
            f"{kind:8s}: {r['events_per_second']:,.0f} events/s, append p50 "
            f"{r['append_p50_ms']:.1f} ms, p99 {r['append_p99_ms']:.1f} ms"
        )
    print(
        f"stream/segments = {result['stream_over_segments']:.2f}; acknowledged but missing: "
        f"{result['stream']['acknowledged_missing']}, stored twice: "
        f"{result['stream']['stored_twice']}; load {result['load_after'][0]:.1f}"
    )
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
