"""The analysts' notebooks run top to bottom against a warehouse the test builds.

Notebooks are stored as jupytext percent files (plain .py, reviewable diffs); here they are
converted in memory and executed with nbclient so they cannot rot unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

from features import lake, warehouse
from tests.pipelines.conftest import Shop, shop  # noqa: F401  (fixture)

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.py"))


@pytest.fixture
def built_warehouse(shop: Shop) -> Path:  # noqa: F811
    """Raw partitions and every warehouse table for the small shop."""
    from sqlalchemy import create_engine

    engine = create_engine(shop.settings.sqlalchemy_url)
    try:
        for spec in lake.SOURCE_TABLES.values():
            lake.extract_table(engine, shop.data_dir / "lake", spec, shop.day)
    finally:
        engine.dispose()
    lake.extract_events(shop.data_dir / "events", shop.data_dir / "lake", shop.day)
    path = shop.data_dir / "warehouse.duckdb"
    warehouse.build_warehouse(shop.data_dir / "lake", path)
    return path


def test_notebooks_are_found() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"sales_and_funnel.py", "search_and_recs.py"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(notebook: Path, built_warehouse: Path, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(built_warehouse))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(notebook)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={**os.environ})
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
