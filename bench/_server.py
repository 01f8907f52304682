"""Helpers for benchmarks: a seeded database, the shop or a baseline app under uvicorn
(``devtools.server``, the launcher the tests use too), results and CPU accounting."""

from __future__ import annotations

import json
import os
import platform
import random
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from devtools.server import ServerProcess  # noqa: E402


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def seed_catalog(database_url: str, products: int, seed: int = 1) -> None:
    """Bulk-insert a catalog straight into the tables (benchmark set-up only)."""
    from serving.core.config import Settings
    from serving.db import migrate
    from serving.db.engine import make_engine
    from serving.db.tables import Category, Inventory, Product, ProductAttribute

    url = Settings(database_url=database_url).sqlalchemy_url
    migrate.upgrade(url)
    engine = make_engine(url)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    cats = []
    for top in range(5):
        cats.append(
            {
                "id": len(cats) + 1,
                "parent_id": None,
                "slug": f"top{top}",
                "name": f"Top {top}",
                "path": f"top{top}",
                "depth": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    for leaf in range(25):
        parent = cats[leaf % 5]
        cats.append(
            {
                "id": len(cats) + 1,
                "parent_id": parent["id"],
                "slug": f"leaf{leaf}",
                "name": f"Leaf {leaf}",
                "path": f"{parent['path']}/leaf{leaf}",
                "depth": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    colours = ["black", "white", "red", "blue", "green"]
    rows, stock, attrs = [], [], []
    for pid in range(1, products + 1):
        colour = rng.choice(colours)
        rows.append(
            {
                "id": pid,
                "sku": f"SKU-{pid}",
                "title": f"Product {pid} {colour}",
                "description": "A product " * 20,
                "brand": f"brand{pid % 40}",
                "category_id": 6 + pid % 25,
                "price_minor": rng.randint(500, 50_000),
                "currency": "EUR",
                "attributes": {"color": colour},
                "image_urls": [],
                "status": "active",
                "rating_avg": rng.random() * 5,
                "rating_count": 3,
                "created_at": now,
                "updated_at": now,
            }
        )
        stock.append(
            {"product_id": pid, "on_hand": rng.randint(0, 100), "reserved": 0, "updated_at": now}
        )
        attrs.append(
            {
                "product_id": pid,
                "key": "color",
                "kind": "str",
                "value_text": colour,
                "value_num": None,
            }
        )
    with engine.begin() as conn:
        conn.execute(insert(Category), cats)
        for start in range(0, products, 5000):
            conn.execute(insert(Product), rows[start : start + 5000])
            conn.execute(insert(Inventory), stock[start : start + 5000])
            conn.execute(insert(ProductAttribute), attrs[start : start + 5000])
    engine.dispose()


@contextmanager
def _served(
    app: str, *, probe: str, what: str, workers: int = 1, env: dict | None = None
) -> Iterator[str]:
    """Start ``uvicorn <app>`` through devtools' one launcher, wait until ``probe`` answers 200
    (the wait stretches with load and STORELOOP_TEST_TIME_SCALE), yield the base URL, stop."""
    server = ServerProcess(
        app, env=os.environ if env is None else env, workers=workers, probe=probe, what=what
    )
    with server.start(timeout=60):
        yield server.url


@contextmanager
def bare_server() -> Iterator[str]:
    """A bare FastAPI JSON endpoint (``bench/_bare_app.py``) at ``<base>/json``: the baseline."""
    with _served("bench._bare_app:app", probe="/json", what="the baseline app") as base:
        yield base


@contextmanager
def running_server(
    data_dir: Path, database_url: str, *, workers: int = 1, extra_env: dict | None = None
):
    """Start ``uvicorn serving.asgi:app`` and yield its base URL; stop it afterwards."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "STORELOOP_RATE_LIMIT_ENABLED": "false",
        "STORELOOP_LOG_LEVEL": "warning",
        **(extra_env or {}),
    }
    what = f"uvicorn serving.asgi:app ({workers} worker(s))"
    with _served("serving.asgi:app", probe="/readyz", what=what, workers=workers, env=env) as base:
        yield base


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(payload, indent=2))
    return path


def _processes() -> Iterator[tuple[int, str, int, float]]:
    """(pid, name, parent pid, user + system CPU seconds) of every process (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            head, _, rest = (proc / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        yield int(proc.name), head.partition("(")[2], int(fields[1]), cpu


def process_tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of the uvicorn process and its worker children (Linux /proc).

    Requests per CPU-second do not depend on how busy the rest of the machine is, unlike
    latency and throughput on a shared box.
    """
    return sum(cpu for pid, _, ppid, cpu in _processes() if root_pid in (pid, ppid))


def processes_cpu_seconds(name: str) -> float:
    """User + system CPU of every process called ``name`` (e.g. ``postgres``: the server
    and all its backends), from /proc; 0.0 where there is none."""
    return sum(cpu for _, comm, _, cpu in _processes() if comm == name)


def cpu_jiffies() -> list[int]:
    """The machine's CPU counters since boot (/proc/stat: user, nice, system, idle, iowait,
    irq, softirq, steal), for :func:`steal_share` over a run."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """The share of the machine's CPU time that the hypervisor gave to other guests between
    two :func:`cpu_jiffies` readings. A virtual machine's latency figures move with it: on
    the 2-core machine of session 5 it was under 0.5% in some runs and 30% in others."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(spent[7] / max(1, sum(spent)), 3)


def server_pid_on_port(port: int) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"uvicorn" in cmd and str(port).encode() in cmd:  # the shop or the baseline app
            return int(proc.name)
    raise RuntimeError(f"no server process on port {port}")
