"""CPU per delivered message of the outbox worker, without a server.

Enqueues messages the way the checkout does (``notifications.enqueue`` inside a write
transaction), then times ``OutboxWorker.run_once`` draining them with the mail folder as the
destination (no ``SMTP_URL``, as in the checkout benchmark). Two shapes:

* ``drain``: everything is due at once, passes of the worker's default size (50);
* ``trickle``: a few messages arrive between passes (5 by default), as at a steady checkout
  rate where the worker keeps up, so the per-pass overhead shows; each trickle pass is followed
  by one empty pass (the one that finds nothing and sends the worker to sleep).

Only the worker's own thread CPU is counted (``time.thread_time`` around ``run_once``). It
includes the kernel's CPU for appending to the day's mbox (a few microseconds; a file per
mail, as before, cost 0.05 to 0.7 ms each on a busy ext4 disk); ``--tmp-base /dev/shm``
keeps the disk out altogether.

    .venv/bin/python bench/bench_outbox.py                          # SQLite, writes JSON
    .venv/bin/python bench/bench_outbox.py --postgres postgresql://postgres@127.0.0.1:5432/test

Results go to bench/results/outbox.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from mailbox import mbox
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "outbox.json"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402

from serving.core.clock import utcnow  # noqa: E402
from serving.core.config import Settings, with_server_option  # noqa: E402
from serving.db import migrate  # noqa: E402
from serving.db.engine import Database  # noqa: E402
from serving.db.tables import User  # noqa: E402
from serving.services.infra import notifications  # noqa: E402
from serving.services.infra.outbox import OutboxWorker  # noqa: E402


def _enqueue(db: Database, user_id: int, count: int) -> None:
    with db.write_gate(), db.transaction() as s:
        for n in range(count):
            order_id = f"ord_{uuid.uuid4().hex[:16]}"
            notifications.enqueue(
                s,
                kind="order_confirmed",
                user_id=user_id,
                order_id=order_id,
                total=f"{n % 997 + 10}.99",
                currency="EUR",
            )


def _setup(url: str) -> tuple[Database, int]:
    migrate.upgrade(url)
    db = Database(url)
    now = utcnow()
    with db.transaction() as s:
        user_id = s.execute(
            insert(User.__table__)
            .values(
                email=f"bench-{uuid.uuid4().hex[:8]}@example.com",
                password_hash="x",
                full_name="Bench",
                role="customer",
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            .returning(User.__table__.c.id)
        ).scalar_one()
    return db, user_id


def _timed_pass(worker: OutboxWorker, limit: int) -> tuple[int, float]:
    start = time.thread_time()
    sent = worker.run_once(limit)
    return sent, time.thread_time() - start


def run_shape(url: str, data_dir: Path, shape: str, messages: int, trickle: int) -> dict[str, Any]:
    db, user_id = _setup(url)
    settings = Settings(data_dir=data_dir, smtp_url=None)
    worker = OutboxWorker(db, settings)
    sent_total, cpu, passes = 0, 0.0, 0
    wall = time.perf_counter()
    try:
        if shape == "drain":
            _enqueue(db, user_id, messages)
            wall = time.perf_counter()
            while True:
                sent, spent = _timed_pass(worker, 50)
                cpu += spent
                passes += 1
                sent_total += sent
                if not sent:
                    break
        else:
            for _ in range(messages // trickle):
                _enqueue(db, user_id, trickle)
                for _ in range(2):  # the pass that sends, then the one that finds nothing
                    sent, spent = _timed_pass(worker, 50)
                    cpu += spent
                    passes += 1
                    sent_total += sent
        wall = time.perf_counter() - wall
        mails = sum(len(mbox(path)) for path in (data_dir / "mail").glob("outbox-*.mbox"))
    finally:
        db.dispose()
    assert sent_total == mails == messages - messages % (1 if shape == "drain" else trickle), (
        sent_total,
        mails,
    )
    return {
        "shape": shape,
        "messages": sent_total,
        "passes": passes,
        "cpu_ms_per_message": round(cpu * 1000 / sent_total, 4),
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
    }


def _postgres_schema(base: str) -> tuple[str, str]:
    schema = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return with_server_option(base, "search_path", schema), schema


def _drop_schema(base: str, schema: str) -> None:
    engine = create_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--trickle", type=int, default=5, help="messages per trickle pass")
    parser.add_argument("--postgres", help="also run on this PostgreSQL URL (private schema)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--tmp-base",
        help="where the data dir (SQLite file, mail folder) goes, e.g. /dev/shm to keep the "
        "file system's own CPU for the mail folder out of the figures",
    )
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    backends: list[str] = [] if args.no_sqlite else ["sqlite"]
    if args.postgres:
        backends.append("postgresql")
    for backend in backends:
        for shape in ("drain", "trickle"):
            with tempfile.TemporaryDirectory(prefix="bench-outbox-", dir=args.tmp_base) as tmp:
                data_dir = Path(tmp)
                if backend == "sqlite":
                    url, schema = f"sqlite:///{data_dir / 'storeloop.db'}", None
                else:
                    url, schema = _postgres_schema(args.postgres)
                try:
                    result = run_shape(url, data_dir, shape, args.messages, args.trickle)
                finally:
                    if schema:
                        _drop_schema(args.postgres, schema)
            result["backend"] = backend
            runs.append(result)
            print(
                f"{backend:10} {shape:8} {result['messages']:5d} msgs in {result['passes']:4d} "
                f"passes: {result['cpu_ms_per_message']:.3f} ms CPU/msg "
                f"(wall {result['wall_s']:.2f} s)"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "outbox_worker_cpu",
                "python": platform.python_version(),
                "machine": platform.machine(),
                "cpus": __import__("os").cpu_count(),
                "trickle": args.trickle,
                "tmp_base": args.tmp_base or tempfile.gettempdir(),
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
