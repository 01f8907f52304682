"""Throughput and latency of POST /api/v1/events against a real uvicorn server.

Why three processes: the server, the load generator and this coordinator each get their own
interpreter, so the load generator's CPU does not hide inside the server's event loop and the
figures mean "events acknowledged (durable) per second as a client sees them". After the load,
the server is stopped cleanly and the closed segments are read back to check that every
acknowledged event is on disk.

    .venv/bin/python bench/bench_events.py                 # default sweep, writes JSON
    .venv/bin/python bench/bench_events.py --seconds 5 --concurrency 8 32

Results go to bench/results/events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "events.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# ------------------------------------------------------------------ server process


def serve(port: int, data_dir: Path, workers: int) -> None:
    """Run the real app (rate limiting off: the bench is one client hammering on purpose)."""
    import uvicorn

    os.environ["STORELOOP_DATA_DIR"] = str(data_dir)
    os.environ["STORELOOP_RATE_LIMIT_ENABLED"] = "false"
    os.environ["STORELOOP_LOG_LEVEL"] = "warning"
    # A migrated shop, as in production: the app's background loops read its tables.
    os.environ.pop("DATABASE_URL", None)
    from serving.core.config import Settings
    from serving.db import migrate

    migrate.upgrade(Settings().sqlalchemy_url)
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )


# ------------------------------------------------------------------ load process


def _batch_body(size: int) -> tuple[bytes, list[str]]:
    import orjson

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = []
    for position in range(size):
        event_id = str(uuid.uuid4())
        if position % 4 == 0:
            events.append(
                {
                    "event_id": event_id,
                    "type": "rec_impression",
                    "client_ts": now,
                    "product_id": 1000 + position,
                    "rec_id": "r-123",
                    "position": position,
                }
            )
        else:
            events.append(
                {
                    "event_id": event_id,
                    "type": "product_view",
                    "client_ts": now,
                    "product_id": 1000 + position,
                    "props": {"referrer": "search", "page": 2},
                }
            )
    return orjson.dumps({"events": events}), [e["event_id"] for e in events]


async def _load(port: int, seconds: float, concurrency: int, batch: int) -> dict[str, Any]:
    import httpx

    url = f"http://127.0.0.1:{port}/api/v1/events"
    latencies: list[float] = []
    accepted = 0
    failures: dict[str, int] = {}
    headers = {"Content-Type": "application/json", "X-Session-Id": "bench-session-0123456789"}
    # One client (one keep-alive connection) per simulated browser: a single shared httpx pool
    # costs the load generator more CPU per request as connections grow, skewing the figures.
    clients = [
        httpx.AsyncClient(timeout=30.0, headers=headers, limits=httpx.Limits(max_connections=1))
        for _ in range(concurrency)
    ]
    warm_body, _ = _batch_body(batch)
    for client in clients:
        await client.post(url, content=warm_body)  # open connections, warm the server
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal accepted
        while time.perf_counter() < deadline:
            body, _ids = _batch_body(batch)
            sent = time.perf_counter()
            response = await client.post(url, content=body)
            latencies.append(time.perf_counter() - sent)
            if response.status_code == 202:
                accepted += response.json()["accepted"]
            else:
                key = str(response.status_code)
                failures[key] = failures.get(key, 0) + 1

    await asyncio.gather(*(worker(client) for client in clients))
    elapsed = time.perf_counter() - started
    for client in clients:
        await client.aclose()
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

    return {
        "concurrency": concurrency,
        "batch_size": batch,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "events_accepted": accepted,
        "events_per_second": round(accepted / elapsed),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0)},
        "failures": failures,
        "loader_cpu_seconds": round(time.process_time(), 2),
    }


def load(port: int, seconds: float, concurrency: int, batch: int) -> None:
    print(json.dumps(asyncio.run(_load(port, seconds, concurrency, batch))))


# ------------------------------------------------------------------ coordinator


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its reaped children, from /proc (Linux only)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_listening(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the server did not start listening in time")


def run_one(seconds: float, concurrency: int, batch: int, workers: int) -> dict[str, Any]:
    """One server, one load run, then a clean stop and a read-back of the closed segments."""
    from features.events import list_closed_segments, read_closed_segments

    me = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="bench-events-") as tmp:
        data_dir = Path(tmp)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, me, "_serve", str(port), str(data_dir), str(workers)], cwd=ROOT
        )
        try:
            _wait_listening(port, server)
            cpu_before = _cpu_seconds(server.pid)
            out = subprocess.run(
                [
                    sys.executable,
                    me,
                    "_load",
                    str(port),
                    str(seconds),
                    str(concurrency),
                    str(batch),
                ],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            server_cpu = _cpu_seconds(server.pid) - cpu_before
        finally:
            server.send_signal(signal.SIGINT)  # clean shutdown closes the open segment
            server.wait(timeout=60)
        result = json.loads(out)
        result["server_cpu_seconds"] = round(server_cpu, 2)
        table, bad = read_closed_segments(data_dir / "events")
        warmup = concurrency * batch
        result["stored_events"] = table.num_rows
        result["stored_unique_ids"] = len(set(table.column("event_id").to_pylist()))
        result["all_acknowledged_on_disk"] = table.num_rows == result["events_accepted"] + warmup
        result["bad_lines"] = bad
        result["segments"] = len(list_closed_segments(data_dir / "events"))
        result["workers"] = workers
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_serve":
        serve(int(argv[1]), Path(argv[2]), int(argv[3]))
        return 0
    if argv and argv[0] == "_load":
        load(int(argv[1]), float(argv[2]), int(argv[3]), int(argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    runs = []
    for concurrency in args.concurrency:
        result = run_one(args.seconds, concurrency, args.batch, args.workers)
        runs.append(result)
        print(
            f"concurrency={concurrency:3d} batch={args.batch}: "
            f"{result['events_per_second']:>7,} events/s  "
            f"p50={result['latency_ms']['p50']} ms  p99={result['latency_ms']['p99']} ms  "
            f"failures={result['failures']}  durable={result['all_acknowledged_on_disk']}"
        )
    report = {
        "benchmark": "events",
        "target_events_per_second": 20_000,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "runs": runs,
        "best_events_per_second": max(r["events_per_second"] for r in runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
