"""The Dagster instance configuration: SQLite under ``DAGSTER_HOME``, or PostgreSQL.

One setting moves run, event-log and schedule storage to PostgreSQL: ``DAGSTER_PG_URL``
(``postgresql://user:pass@host:5432/db``, the form every other tool takes). dagster-postgres
hands the URL to SQLAlchemy, and SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, with
which dagster-postgres's SQL fails (``syntax error at or near "$1"``); so the URL is rewritten
to the psycopg2 driver here instead of asking every user to know that.

``python -m pipelines.instance`` writes ``$DAGSTER_HOME/dagster.yaml`` from the repository's
``dagster.yaml`` with the storage block chosen by the environment; the rest (run queue,
telemetry) is kept as it is.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

#: The repository's instance file: the single source for everything but storage.
TEMPLATE = Path(__file__).resolve().parents[1] / "dagster.yaml"

_PG_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


class InstanceConfigError(ValueError):
    """``DAGSTER_PG_URL`` is not a PostgreSQL URL dagster-postgres can use."""


def dagster_pg_url(url: str) -> str:
    """``url`` with the psycopg2 driver that dagster-postgres works with.

    >>> dagster_pg_url("postgresql://dagster@db:5432/dagster")
    'postgresql+psycopg2://dagster@db:5432/dagster'
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in _PG_SCHEMES or not parts.hostname and not parts.query:
        raise InstanceConfigError(
            f"DAGSTER_PG_URL must be a postgresql:// URL with a host, got {url!r}"
        )
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def instance_config(pg_url: str | None, template: Path = TEMPLATE) -> dict[str, Any]:
    """The instance config: the template, with PostgreSQL storage when ``pg_url`` is given."""
    config: dict[str, Any] = yaml.safe_load(template.read_text()) if template.exists() else {}
    config.setdefault("telemetry", {"enabled": False})
    if pg_url:
        # One ``storage`` block covers run, event-log and schedule storage.
        config["storage"] = {"postgres": {"postgres_url": dagster_pg_url(pg_url)}}
    return config


def write_instance_config(dagster_home: Path | str, pg_url: str | None) -> Path:
    """Write ``dagster.yaml`` into ``dagster_home`` (mode 600: the URL may hold a password)."""
    home = Path(dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    header = "# Written by `python -m pipelines.instance` from the repository's dagster.yaml.\n"
    text = header + yaml.safe_dump(instance_config(pg_url), sort_keys=False)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path


def load_instance() -> Any:
    """The instance runs are recorded in: ``DAGSTER_HOME``'s, with its config refreshed from
    ``DAGSTER_PG_URL`` when that is set; None (an ephemeral instance) without ``DAGSTER_HOME``."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    pg_url = os.environ.get("DAGSTER_PG_URL") or None
    if pg_url and not home:
        raise InstanceConfigError("DAGSTER_PG_URL is set but DAGSTER_HOME is not")
    if not home:
        return None
    if pg_url:
        write_instance_config(home, pg_url)
    return dg.DagsterInstance.get()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write $DAGSTER_HOME/dagster.yaml.")
    parser.add_argument("--dagster-home", default=os.environ.get("DAGSTER_HOME"))
    parser.add_argument("--pg-url", default=os.environ.get("DAGSTER_PG_URL") or None)
    args = parser.parse_args(argv)
    if not args.dagster_home:
        print("error: set DAGSTER_HOME or pass --dagster-home", file=sys.stderr)
        return 2
    try:
        path = write_instance_config(args.dagster_home, args.pg_url)
    except InstanceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    storage = "PostgreSQL" if args.pg_url else "SQLite"
    print(f"{path}: {storage} run, event-log and schedule storage")
    return 0


if __name__ == "__main__":
    sys.exit(main())
