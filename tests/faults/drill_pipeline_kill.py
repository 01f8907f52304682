"""Drill: SIGKILL ``python -m pipelines.run_all`` mid-way, rerun it, compare with a clean run.

    .venv/bin/python tests/faults/drill_pipeline_kill.py [--db sqlite|postgresql] [--keep]

1. A small simulated shop (SQLite file or a fresh PostgreSQL schema) with closed event segments,
   simulated only up to a middle day at first.
2. **base**: a complete ``run_all`` on that shop publishes a first state (lake, warehouse, a
   serving ALS model, a current search index), as an earlier nightly run would have; every
   check must pass. Then the shop moves on: the same shoppers simulate the remaining days.
3. **reference**: a copy of base, then a complete ``run_all``, which must replace the serving
   model with a new version (so every scenario below kills a run that replaces a model that
   is already serving, not one that publishes the first).
4. One **scenario** per kill point: a copy of base, ``run_all`` killed with SIGKILL, then
   - *nothing half-written is published*: every Parquet partition, warehouse table, registry
     version, serving pointer and intermediate (features, model candidates, evaluation) is
     whole and equals either base's or the reference's; every manifest's checksums hold;
   - *the rerun converges*: a plain rerun succeeds and its outputs equal the reference's
     (Parquet bytes, warehouse rows, the serving model's files, the search index's
     documents), and no temporary file of the killed run is left behind.

Kill points: exact ones, where the child SIGKILLs itself from an audit hook at a chosen file
operation (before the rename of a Parquet partition, half-way through saving features or a
model, before ``evaluation.json`` or a registry version is renamed into place, before the
serving pointer swap, before an index manifest or its ``CURRENT`` pointer); and external ones,
where the drill SIGKILLs the process group of a plain ``python -m pipelines.run_all`` a moment
after a progress line (raw extraction, warehouse build, model training); one the run outran is
reported as skipped, but at least one must land. Prints one line per scenario and
``PASS``/``FAIL``; the exit code is 0 on PASS. ``--quick`` runs a representative four.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("STORELOOP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Temporary files, folders and links our writers fill before renaming them into place
#: (``features.atomic`` names, the registry's, the index store's fixed ``.X.tmp`` names).
TEMP_PATTERNS = ("*.tmp", "*.link", ".tmp.*", ".tmp-*", ".serving.json.*")


# ------------------------------------------------------------------------- the killed child


def child_main(event: str, pattern: str, nth: int) -> None:
    """Run ``pipelines.run_all`` as ``python -m`` would, SIGKILLing ourselves at the ``nth``
    audit event ``event`` whose path matches ``pattern`` (``open`` only counts writes)."""
    import runpy

    seen = 0

    def hook(name: str, args: tuple) -> None:
        nonlocal seen
        if name != event:
            return
        if name == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
            )
            if not writing:
                return
            paths = [path]
        else:
            paths = [args[0], args[1]]
        if any(isinstance(p, str | Path) and fnmatch.fnmatch(str(p), pattern) for p in paths):
            seen += 1
            if seen == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    sys.argv = ["pipelines.run_all"]
    runpy.run_module("pipelines.run_all", run_name="__main__", alter_sys=True)


# ------------------------------------------------------------------------- observing outputs


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _files(folder: Path) -> dict[str, str]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def lake_partitions(data_dir: Path) -> dict[str, str]:
    lake = data_dir / "lake"
    paths = sorted(lake.glob("raw/*/date=*/part-0.parquet")) + sorted(
        lake.glob("quarantine/**/*.jsonl")
    )
    return {str(p.relative_to(lake)): _sha(p) for p in paths}


def warehouse_tables(data_dir: Path) -> dict[str, str]:
    from features.warehouse import connect

    path = data_dir / "warehouse.duckdb"
    if not path.exists():
        return {}
    con = connect(path, read_only=True)
    try:
        out = {}
        for (table,) in con.execute("SHOW TABLES").fetchall():
            rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            out[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        return out
    finally:
        con.close()


def intermediates(data_dir: Path) -> dict[str, Any]:
    """Features, model candidates and the evaluation: per folder, its files' digests."""
    lake = data_dir / "lake"
    out: dict[str, Any] = {"features": _files(lake / "features" / "interactions")}
    for model in sorted((lake / "models").glob("*")):
        if model.is_dir() and not model.name.startswith("."):
            out[f"model:{model.name}"] = _files(model)
    evaluation = lake / "models" / "evaluation.json"
    out["evaluation"] = _evaluation_digest(evaluation) if evaluation.exists() else None
    return out


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _evaluation_digest(path: Path) -> str:
    """The evaluation's digest without its wall-clock timings (``seconds`` per trial search),
    which differ from run to run; a torn file does not parse and keeps its raw digest."""
    try:
        data = json.loads(path.read_bytes())
    except ValueError:
        return f"unparsable:{_sha(path)}"
    canonical = json.dumps(_without_timings(data), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()


@dataclass
class Registry:
    """What the registry serves, by content, and every problem its checks found."""

    recs: dict[str, dict[str, str]] = field(default_factory=dict)  # name → serving files
    search: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def registry_state(data_dir: Path) -> Registry:
    from models.exceptions import ArtifactError
    from models.registry import ArtifactRegistry
    from models.search.errors import IndexCorruptError
    from models.search.index_store import IndexStore, verify

    state = Registry()
    root = data_dir / "registry"
    recs = ArtifactRegistry(root, kind="recs")
    for name in recs.names():
        for version in recs.versions(name):
            try:
                recs.verify(name, version)
            except ArtifactError as exc:
                state.problems.append(f"recs/{name}/{version} does not verify: {exc}")
        try:
            serving = recs.serving_version(name)
        except ValueError as exc:
            state.problems.append(f"recs/{name}: unreadable serving pointer ({exc})")
            continue
        if serving is None:
            continue
        try:
            recs.verify(name, serving)
            state.recs[name] = recs.manifest(name, serving)["files"]
        except ArtifactError as exc:
            state.problems.append(f"recs/{name}: serving {serving} does not verify: {exc}")
    index_root = root / "search_index"
    if index_root.is_dir():
        store = IndexStore(index_root)
        for version in store.versions():
            try:
                verify(store.path(version))
            except IndexCorruptError as exc:
                state.problems.append(f"search_index/{version} does not verify: {exc}")
        current = store.current()
        if current is not None:
            try:
                manifest = verify(store.path(current))
                files = manifest["files"]
                state.search = {
                    "doc_count": manifest["doc_count"],
                    "documents": files.get("index/doc_table.parquet"),
                    "vocabulary": files.get("index/vocab.json"),
                }
            except IndexCorruptError as exc:
                state.problems.append(f"search_index: CURRENT {current} does not verify: {exc}")
    return state


def temp_leftovers(data_dir: Path) -> list[str]:
    """Temporaries, and folders no link or pointer leads to any more (a killed writer's)."""
    found = []
    for sub in ("lake", "registry"):
        for p in (data_dir / sub).rglob("*"):
            if any(fnmatch.fnmatch(p.name, pat) for pat in TEMP_PATTERNS):
                found.append(str(p.relative_to(data_dir)))
    for parent in (data_dir / "lake" / "features", data_dir / "lake" / "models"):
        for link in (p for p in parent.glob("*") if p.is_symlink()):
            # features.atomic.replace_dir keeps the current folder and the one before it.
            others = [p for p in parent.glob(f".{link.name}.*.d") if p.name != os.readlink(link)]
            if len(others) > 1:
                found += [
                    f"{p.relative_to(data_dir)} (one of {len(others)} old versions)" for p in others
                ]
    return sorted(found)


def unpublished_index_versions(data_dir: Path) -> list[str]:
    """Index version folders without a manifest: a killed build's, ignored by every reader."""
    versions = data_dir / "registry" / "search_index" / "versions"
    if not versions.is_dir():
        return []
    return sorted(p.name for p in versions.iterdir() if not (p / "manifest.json").exists())


@dataclass
class Snapshot:
    lake: dict[str, str]
    warehouse: dict[str, str]
    registry: Registry
    intermediate: dict[str, Any]

    @classmethod
    def of(cls, data_dir: Path) -> Snapshot:
        return cls(
            lake_partitions(data_dir),
            warehouse_tables(data_dir),
            registry_state(data_dir),
            intermediates(data_dir),
        )


def whole_after_kill(killed: Snapshot, base: Snapshot, ref: Snapshot) -> list[str]:
    """Everything visible after the kill is either the old state or the finished new one."""
    problems = list(killed.registry.problems)

    def one_of(what: str, value: Any, old: Any, new: Any) -> None:
        if value != old and value != new:
            problems.append(f"{what} is neither base's nor the reference's")

    for path, digest in killed.lake.items():
        one_of(f"lake {path}", digest, base.lake.get(path), ref.lake.get(path))
    for table, digest in killed.warehouse.items():
        one_of(
            f"warehouse table {table}", digest, base.warehouse.get(table), ref.warehouse.get(table)
        )
    for name, files in killed.registry.recs.items():
        one_of(
            f"serving recs/{name}", files, base.registry.recs.get(name), ref.registry.recs.get(name)
        )
    one_of(
        "current search index", killed.registry.search, base.registry.search, ref.registry.search
    )
    for key, value in killed.intermediate.items():
        one_of(f"intermediate {key}", value, base.intermediate.get(key), ref.intermediate.get(key))
    return problems


def same_as_reference(rerun: Snapshot, ref: Snapshot) -> list[str]:
    problems = list(rerun.registry.problems)
    for what, got, want in (
        ("lake partitions", rerun.lake, ref.lake),
        ("warehouse tables", rerun.warehouse, ref.warehouse),
        ("serving models", rerun.registry.recs, ref.registry.recs),
        ("current search index", rerun.registry.search, ref.registry.search),
        ("intermediates", rerun.intermediate, ref.intermediate),
    ):
        if got != want:
            keys = (
                sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                if isinstance(got, dict) and isinstance(want, dict)
                else []
            )
            problems.append(f"{what} differ from the reference {keys[:5]}")
    return problems


# ------------------------------------------------------------------------- running things


class Drill:
    def __init__(self, workdir: Path, db: str, python: str) -> None:
        self.workdir = workdir
        self.db = db
        self.python = python
        self.schema = f"drill_pipeline_kill_{os.getpid()}"
        self.database_url = ""

    def env(self, data_dir: Path) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DAGSTER_HOME", "REDIS_URL", "PYTHONDONTWRITEBYTECODE")
            and not k.startswith("STORELOOP_")
        }
        env.update(
            DATA_DIR=str(data_dir),
            DATABASE_URL=self.database_url,
            OPENBLAS_NUM_THREADS="1",
            PYTHONPATH=str(ROOT),
            PYTHONPYCACHEPREFIX=str(Path(tempfile.gettempdir()) / "storeloop-pycache"),
        )
        return env

    def run(self, args: list[str], data_dir: Path, log: Path, **kw: Any) -> int:
        with open(log, "ab") as out:
            return subprocess.run(
                [self.python, *args],
                cwd=ROOT,
                env=self.env(data_dir),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
                **kw,
            ).returncode

    def make_shop(self) -> Path:
        """An empty, migrated shop (its history comes from :meth:`simulate`)."""
        shop = self.workdir / "shop"
        shop.mkdir(parents=True)
        if self.db == "sqlite":
            self.database_url = f"sqlite:///{shop / 'storeloop.db'}"
        else:
            from sqlalchemy import create_engine, text

            from serving.core.config import Settings

            admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
                conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            admin.dispose()
            sep = "&" if "?" in PG_URL else "?"
            self.database_url = f"{PG_URL}{sep}options=-csearch_path%3D{self.schema}"
        log = self.workdir / "shop.log"
        if self.run(["-m", "serving", "migrate"], shop, log) != 0:
            raise RuntimeError(f"migrate failed, see {log}")
        return shop

    def simulate(self, shop: Path, start: date, days: int) -> None:
        """``days`` days of the same shoppers from ``start`` on (products already loaded and
        accounts already registered are reused, so a second call continues the shop)."""
        args = ["-m", "serving", "simulate", "--seed", "11", "--users", "200", "--products"]
        args += ["400", "--days", str(days), "--start", start.isoformat()]
        args += ["--target", "inprocess", "--workers", "1", "--quiet", "--no-truth"]
        log = self.workdir / "shop.log"
        if self.run(args, shop, log) != 0:
            raise RuntimeError(f"simulate failed, see {log}")

    def drop_schema(self) -> None:
        if self.db != "postgresql":
            return
        from sqlalchemy import create_engine, text

        from serving.core.config import Settings

        admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        admin.dispose()

    def fresh_copy(self, source: Path, name: str) -> Path:
        target = self.workdir / name
        shutil.copytree(source, target, symlinks=True)
        return target


@dataclass(frozen=True)
class KillPoint:
    """Where to kill: at an audit event inside the child, or a while after a log line."""

    name: str
    event: str | None = None  # "open" (writes only) or "os.rename" (also os.replace)
    pattern: str = ""  # fnmatch on the path (either path of a rename)
    nth: int = 1
    after_log: str | None = None  # external SIGKILL of the process group …
    delay: float = 0.0  # … this long after the line appeared
    quick: bool = False  # part of the --quick subset


KILL_POINTS = (
    KillPoint(
        "parquet: before the 3rd partition rename", "os.rename", "*/lake/raw/*.tmp", 3, quick=True
    ),
    KillPoint("features: matrix saved, id maps not", "open", "*/lake/features/*/users.json"),
    KillPoint(
        "features: written, link not swapped", "os.rename", "*/lake/features/*.link", quick=True
    ),
    KillPoint("model candidate: params saved, arrays not", "open", "*/lake/models/*/arrays.npz"),
    KillPoint("evaluation.json half-written", "os.rename", "*/lake/models/.evaluation.json.*"),
    KillPoint(
        "registry: version written, not renamed in",
        "os.rename",
        "*/registry/recs/*/.tmp.*",
        quick=True,
    ),
    KillPoint("registry: published, pointer not swapped", "os.rename", "*/.serving.json.*"),
    KillPoint(
        "registry: promoted, history not appended", "open", "*/registry/recs/*/history.jsonl"
    ),
    KillPoint("search index: files built, no manifest", "open", "*/versions/*/.manifest.json.tmp"),
    KillPoint("search index: complete, CURRENT not swapped", "os.rename", "*/.CURRENT.tmp"),
    KillPoint("external: raw extraction", after_log="raw_events - STEP_START", delay=0.2),
    KillPoint(
        "external: warehouse build", after_log="dim_product - STEP_START", delay=0.2, quick=True
    ),
    KillPoint("external: model training", after_log="als_model - STEP_START", delay=0.1),
)

#: How an external kill point can end without a kill: the run was faster than the delay.
MISSED = "NOT KILLED"


def kill_run(drill: Drill, point: KillPoint, data_dir: Path, log: Path) -> str:
    """Start run_all, SIGKILL it at ``point``; returns where it landed (for the report)."""
    if point.event:
        args = [
            str(Path(__file__).resolve()),
            "--child",
            point.event,
            point.pattern,
            str(point.nth),
        ]
        code = drill.run(args, data_dir, log)
        if code != -signal.SIGKILL:
            return f"{MISSED} (exit {code}): the kill point was never reached"
        return "killed itself at the kill point"
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [drill.python, "-m", "pipelines.run_all"],
            cwd=ROOT,
            env=drill.env(data_dir),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.monotonic()
    deadline = None
    while child.poll() is None:
        if (
            deadline is None
            and point.after_log
            and point.after_log in log.read_text("utf-8", "replace")
        ):
            deadline = time.monotonic() + point.delay
        if deadline is not None and time.monotonic() >= deadline:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            steps = re.findall(
                r'Started execution of step "([^"]+)"', log.read_text("utf-8", "replace")
            )
            where = f"step {steps[-1]}" if steps else "raw extraction"
            return f"killed by the drill after {time.monotonic() - started:.1f} s, in {where}"
        time.sleep(0.01)
    return f"{MISSED}: run_all finished first (exit {child.returncode})"


#: Days of simulated history; the base run sees the first ``BASE_DAYS`` of them.
SHOP_DAYS = 6
BASE_DAYS = 3


def replaced_models(base: Snapshot, ref: Snapshot) -> list[str]:
    """Models that served after the base run and serve a different version after the
    reference run: the replacements every kill scenario interrupts."""
    return sorted(
        name
        for name, files in base.registry.recs.items()
        if ref.registry.recs.get(name) not in (None, files)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--only", help="run only kill points whose name contains this")
    parser.add_argument("--quick", action="store_true", help="a representative subset")
    parser.add_argument(
        "--child", nargs=3, metavar=("EVENT", "PATTERN", "NTH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child[0], args.child[1], int(args.child[2]))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="storeloop-drill-"))
    drill = Drill(workdir, args.db, sys.executable)
    failures: list[str] = []
    try:
        print(f"pipeline kill drill ({args.db}) in {workdir}", flush=True)
        shop = drill.make_shop()
        from pipelines.run_all import data_days
        from serving.core.config import Settings

        # The shop's history up to a middle day, the nightly run that publishes from it, then
        # the rest of the history: the runs under test replace what that run made serve.
        first = datetime.now(UTC).date() - timedelta(days=SHOP_DAYS)
        drill.simulate(shop, first, BASE_DAYS)
        base_dir = workdir / "base"
        base_dir.mkdir()
        shutil.copytree(shop / "events", base_dir / "events")
        base_log = workdir / "base.log"
        if drill.run(["-m", "pipelines.run_all"], base_dir, base_log):
            raise RuntimeError(f"the base run failed (see {base_log})")
        base = Snapshot.of(base_dir)
        if base.registry.problems or "als" not in base.registry.recs or not base.registry.search:
            raise RuntimeError(f"the base run published no serving model or index: {base.registry}")
        drill.simulate(shop, first + timedelta(days=BASE_DAYS), SHOP_DAYS - BASE_DAYS)
        shutil.copytree(shop / "events", base_dir / "events", dirs_exist_ok=True)
        days = data_days(Settings(database_url=drill.database_url).sqlalchemy_url, shop / "events")
        ref_dir = drill.fresh_copy(base_dir, "reference")
        started = time.monotonic()
        if drill.run(["-m", "pipelines.run_all"], ref_dir, workdir / "reference.log"):
            raise RuntimeError("the reference run failed")
        ref_seconds = time.monotonic() - started
        ref = Snapshot.of(ref_dir)
        if ref.registry.problems or not ref.registry.recs or not ref.registry.search:
            raise RuntimeError(f"the reference run published nothing usable: {ref.registry}")
        replaced = replaced_models(base, ref)
        if "als" not in replaced:
            raise RuntimeError(
                "the reference run did not replace the serving als model, so no kill point "
                f"would interrupt a replacement (replaced: {replaced or 'none'})"
            )
        print(
            f"  {len(days)} days; base run on the first {BASE_DAYS}; reference run "
            f"{ref_seconds:.1f} s: {len(ref.lake)} partitions, {len(ref.warehouse)} tables, "
            f"serving models replaced {replaced}, index of {ref.registry.search['doc_count']} "
            f"docs{' (replaced)' if ref.registry.search != base.registry.search else ''}",
            flush=True,
        )
        points = [
            p
            for p in KILL_POINTS
            if (not args.only or args.only in p.name) and (p.quick or not args.quick)
        ]
        external_kills = 0
        for n, point in enumerate(points, 1):
            data_dir = drill.fresh_copy(base_dir, f"kill-{n:02d}")
            log = workdir / f"kill-{n:02d}.log"
            landed = kill_run(drill, point, data_dir, log)
            if landed.startswith(MISSED) and point.event is None:
                print(f"  [skip] {point.name}: {landed}", flush=True)
                continue  # an external kill the run outran: nothing was interrupted
            external_kills += point.event is None
            problems = [landed] if landed.startswith(MISSED) else []
            problems += whole_after_kill(Snapshot.of(data_dir), base, ref)
            if drill.run(["-m", "pipelines.run_all"], data_dir, log) != 0:
                problems.append(f"the rerun failed (see {log})")
            else:
                problems += same_as_reference(Snapshot.of(data_dir), ref)
                problems += [f"temporary file left behind: {p}" for p in temp_leftovers(data_dir)]
            verdict = "ok" if not problems else "FAIL"
            print(f"  [{verdict}] {point.name}: {landed}", flush=True)
            litter = unpublished_index_versions(data_dir)
            if litter:
                print(f"         (unpublished index folders left, never served: {litter})")
            for problem in problems:
                print(f"         - {problem}", flush=True)
            if problems:
                failures.append(point.name)
        if any(p.event is None for p in points) and not external_kills:
            failures.append("no external kill landed before its run finished")
    except Exception as exc:  # noqa: BLE001 - a drill reports, it does not crash
        failures.append(f"drill error: {exc}")
        print(f"  drill error: {exc}", flush=True)
    finally:
        drill.drop_schema()
        if not args.keep and not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    print("PASS" if not failures else f"FAIL ({len(failures)}): {'; '.join(failures)}", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
