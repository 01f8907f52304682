"""An open-loop (constant-rate) HTTP/1.1 load generator for the benchmarks.

Why not wrk: wrk keeps every connection busy, so its latencies are measured at saturation and
p50 is just ``connections / throughput``. A target such as "p99 under 10 ms at 1,000 req/s"
needs requests sent on a fixed schedule whatever the server does, with each latency measured
from the moment the request *should* have been sent (so a stalled server is charged for the
requests queued behind it: no coordinated omission).

Why not httpx: at 1,000 req/s httpx alone needs most of a core, which on this 2-core machine
would be taken from the server under test. This client writes pre-built request bytes on
keep-alive sockets with asyncio (uvloop when installed) and parses only the status line and
``Content-Length``/chunked framing, so it costs a small fraction of a core.

Usage from a benchmark::

    result = run_open_loop(base_url, make_request, rate=1000, seconds=15)

where ``make_request(i)`` returns ``(method, path, headers, body)`` for request ``i``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RequestSpec = tuple[str, str, dict[str, str], bytes]


@dataclass
class _Stats:
    latencies: list[float] = field(default_factory=list)
    #: (seconds since the measured part began, latency) of every recorded request.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    measured_from: float = 0.0
    codes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    late_starts: int = 0
    connections: int = 0


def _encode(host: str, spec: RequestSpec) -> bytes:
    method, path, headers, body = spec
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


class _Pool:
    """Idle keep-alive connections; opens a new one when none is idle (up to a cap).

    The connection idle longest goes next (FIFO), so requests spread over every open
    connection, as a shop's traffic comes from many shoppers each on their own connection.
    Taking the one freed last (LIFO) sent most requests down the few connections that
    happened to be free most often, and so to whichever server worker had accepted those:
    one worker got up to twice the other's share."""

    def __init__(self, host: str, port: int, cap: int, stats: _Stats) -> None:
        self.host, self.port, self.cap, self.stats = host, port, cap, stats
        self.idle: deque[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = deque()
        self.opened = 0
        self.freed = asyncio.Condition()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            if self.idle:
                return self.idle.popleft()
            if self.opened < self.cap:
                return await self.fresh()
            async with self.freed:
                await self.freed.wait()

    async def fresh(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A new connection, never an idle one (which may be just as stale as the last)."""
        self.opened += 1
        self.stats.connections = max(self.stats.connections, self.opened)
        try:
            return await asyncio.open_connection(self.host, self.port)
        except OSError:
            self.opened -= 1
            raise

    async def give(self, conn, *, broken: bool) -> None:
        if broken:
            conn[1].close()
            self.opened -= 1
        else:
            self.idle.append(conn)
        async with self.freed:
            self.freed.notify()


async def _one(pool: _Pool, payload: bytes, due: float, stats: _Stats, record: bool) -> None:
    broken = True
    conn = None
    try:
        for attempt in range(2):
            conn = await (pool.take() if attempt == 0 else pool.fresh())
            reader, writer = conn
            try:
                writer.write(payload)
                status = await _read_response(reader)
                break
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                # The server closes keep-alive connections that sat idle (uvicorn: 5 s); a
                # request written on one gets no answer at all. Like a browser, send it again
                # on a fresh connection (once), as the server never saw it.
                nothing_read = not getattr(exc, "partial", b"")
                await pool.give(conn, broken=True)
                conn = None
                if attempt or not nothing_read:
                    raise
        broken = False
        if record:
            latency = time.perf_counter() - due
            stats.latencies.append(latency)
            stats.timeline.append((due - stats.measured_from, latency))
            stats.codes[status] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        if record:
            stats.errors[type(exc).__name__] += 1
    finally:
        if conn is not None:
            await pool.give(conn, broken=broken)


async def _drive(
    base_url: str,
    make_request: Callable[[int], RequestSpec],
    rate: float,
    seconds: float,
    warmup: float,
    max_connections: int,
) -> _Stats:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats = _Stats()
    pool = _Pool(host, port, max_connections, stats)
    total = int(rate * (warmup + seconds))
    warm = int(rate * warmup)
    payloads = [_encode(f"{host}:{port}", make_request(i)) for i in range(total)]
    tasks = []
    start = time.perf_counter() + 0.05
    stats.measured_from = start + warm / rate
    for i, payload in enumerate(payloads):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            stats.late_starts += 1
        tasks.append(asyncio.ensure_future(_one(pool, payload, due, stats, i >= warm)))
    await asyncio.gather(*tasks)
    for _reader, writer in pool.idle:
        writer.close()
    return stats


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _p99_by_second(timeline: list[tuple[float, float]]) -> list[float]:
    """p99 (ms) of the requests due in each second: a tail made by one stall shows as one
    high second, a tail spread evenly as all of them high."""
    seconds: dict[int, list[float]] = {}
    for at, latency in timeline:
        seconds.setdefault(int(at), []).append(latency)
    return [round(_percentile(sorted(seconds[s]), 0.99) * 1000, 1) for s in sorted(seconds)]


def run_open_loop(
    base_url: str,
    make_request: Callable[[int], RequestSpec],
    *,
    rate: float,
    seconds: float,
    warmup: float = 2.0,
    max_connections: int = 256,
) -> dict:
    """Send ``rate`` requests per second for ``warmup + seconds``; report the measured part.

    Latency percentiles are in milliseconds from each request's scheduled send time.
    ``late_starts`` counts requests the generator itself sent more than 5 ms late (if it is
    not near zero the client, not the server, was the bottleneck).
    """
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        runner = asyncio.run
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    stats = runner(_drive(base_url, make_request, rate, seconds, warmup, max_connections))
    wall = time.perf_counter() - wall0
    latencies = sorted(stats.latencies)
    ok = sum(n for code, n in stats.codes.items() if 200 <= code < 400)
    return {
        "target_rate": rate,
        "seconds": seconds,
        "requests": len(latencies),
        "achieved_rate": round(len(latencies) / seconds, 1),
        "ok": ok,
        "status_codes": {str(k): v for k, v in sorted(stats.codes.items())},
        "errors": dict(stats.errors),
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p90_ms": round(_percentile(latencies, 0.90) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "p999_ms": round(_percentile(latencies, 0.999) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else float("nan")) * 1000, 2),
        "p99_ms_by_second": _p99_by_second(stats.timeline),
        "connections_used": stats.connections,
        "late_starts": stats.late_starts,
        "client_cpu_share": round((time.process_time() - cpu0) / wall, 3),
    }
