"""`python -m pipelines.run_all`: the demo's first pipeline run, as named jobs and few runs."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines import run_all
from tests.pipelines.conftest import Shop


def test_consecutive_days_become_one_range() -> None:
    d = date.fromisoformat
    days = [d("2026-01-01"), d("2026-01-02"), d("2026-01-03"), d("2026-01-07"), d("2026-01-08")]
    assert run_all.contiguous_ranges(days) == [
        (d("2026-01-01"), d("2026-01-03")),
        (d("2026-01-07"), d("2026-01-08")),
    ]
    assert run_all.contiguous_ranges([]) == []


def test_run_all_is_one_backfill_run_and_one_build_run_with_job_names(
    shop: Shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    home = tmp_path / "dagster"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DATA_DIR", str(shop.data_dir))
    monkeypatch.setenv("DATABASE_URL", shop.settings.sqlalchemy_url)
    monkeypatch.setattr(
        run_all, "data_days", lambda *_: [date.fromisoformat(shop.day)], raising=True
    )
    assert run_all.main([]) == 0
    out = capsys.readouterr().out
    assert "raw:" in out and "one run" in out and "warehouse, features, models, search: ok" in out
    with dg.DagsterInstance.get() as instance:
        names = sorted(r.job_name for r in instance.get_runs())
    assert names == ["lakehouse_backfill", "lakehouse_build"]
    assert "__ephemeral_asset_job__" not in names
