"""The ops page names real pipeline runs in human time (issue 24, first minutes): the shop's
first pipeline run, recorded by a real Dagster webserver, read through the shop's ops page.
Driven against real routes only (no sample answers)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from devtools.browser import sign_in
from devtools.demo_shop import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    live_server,
    seed_catalog,
    wait_for_search,
)
from devtools.server import ROOT as REPO
from devtools.server import free_port
from devtools.shop_db import create_admin
from devtools.waits import scaled

# The page, not the database: SQLite is enough (left out of -m db). The first pipeline run over
# the shop's database is asserted on PostgreSQL in tests/pipelines/test_run_all.py.
pytestmark = [pytest.mark.browser, pytest.mark.db_agnostic]


@pytest.fixture
def shop_with_dagster(settings, db_url: str, tmp_path: Path) -> Iterator[str]:
    """A shop whose first pipeline run (a named job) is recorded in a Dagster instance served
    by a real Dagster webserver, and the shop's ops page pointed at it."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    port = free_port()
    dagster_url = f"http://127.0.0.1:{port}"
    env = {
        "DATA_DIR": str(settings.data_dir),
        "DATABASE_URL": db_url,
        "DAGSTER_HOME": str(home),
        "STORELOOP_DAGSTER_URL": dagster_url,
    }
    with live_server(
        data_dir=settings.data_dir,
        database_url=db_url,
        jwt_secret=settings.jwt_secret,
        env={"STORELOOP_DAGSTER_URL": dagster_url},
    ) as server:
        create_admin(db_url, ADMIN_EMAIL, ADMIN_PASSWORD)
        seed_catalog(server.url, customers=1)
        wait_for_search(server.url)
        child_env = {**os.environ, **env}
        today = datetime.now(UTC).date().isoformat()
        subprocess.run(
            [sys.executable, "-m", "pipelines.run_all", "--from-day", today],
            cwd=REPO,
            env=child_env,
            check=True,
            capture_output=True,
            timeout=900,
        )
        log = (tmp_path / "webserver.log").open("wb")
        web = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", "pipelines", "-h", "127.0.0.1"]
            + ["-p", str(port)],
            cwd=home,
            env={**child_env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + scaled(300)
            while True:
                assert web.poll() is None, (tmp_path / "webserver.log").read_text()[-2000:]
                try:
                    if httpx.get(f"{dagster_url}/server_info", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the Dagster webserver did not start"
                time.sleep(1)
            yield server.url
        finally:
            web.terminate()
            web.wait(timeout=30)
            log.close()


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ops_page_shows_named_runs_in_human_time(shop_with_dagster: str, new_page) -> None:
    page = new_page()
    sign_in(page, shop_with_dagster, ADMIN_EMAIL, ADMIN_PASSWORD, "/ops")
    runs = page.locator("section[aria-labelledby=ops-runs] table")
    expect(runs).to_contain_text("lakehouse_backfill", timeout=30_000)
    expect(runs).to_contain_text("lakehouse_build")
    text = runs.inner_text()
    assert "__ephemeral_asset_job__" not in text
    assert not re.search(r"\b1\d{9}\.\d+\b", text), "raw epoch seconds on the page"
    year = str(datetime.now(UTC).year)
    assert year in text, text  # started/ended as dates and times
