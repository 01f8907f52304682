"""One data layout: the shop and the pipelines read the same environment into the same paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from features.layout import DataLayout


def test_layout_keeps_the_paths_existing_data_directories_hold(tmp_path):
    layout = DataLayout(tmp_path)
    assert layout.events == tmp_path / "events"
    assert layout.lake == tmp_path / "lake"
    assert layout.warehouse == tmp_path / "warehouse.duckdb"
    assert layout.registry == tmp_path / "registry"
    assert layout.search_index == tmp_path / "registry" / "search_index"
    assert layout.search_ranker == tmp_path / "registry" / "search_ranker"
    assert layout.recs_online == tmp_path / "recs" / "online"
    assert layout.mail == tmp_path / "mail"
    assert layout.database == tmp_path / "storeloop.db"


def test_lake_and_registry_may_live_elsewhere(tmp_path):
    layout = DataLayout(tmp_path / "data", lake_dir=tmp_path / "l", registry_dir=tmp_path / "r")
    assert (layout.lake, layout.registry) == (tmp_path / "l", tmp_path / "r")
    assert layout.search_index == tmp_path / "r" / "search_index"
    assert layout.events == tmp_path / "data" / "events"


def test_shop_and_pipelines_read_the_same_variables_into_the_same_layout(tmp_path, monkeypatch):
    from pipelines.settings import PipelineSettings
    from serving.core.config import Settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STORELOOP_REGISTRY_DIR", str(tmp_path / "shared" / "registry"))
    monkeypatch.setenv("STORELOOP_LAKE_DIR", str(tmp_path / "shared" / "lake"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("STORELOOP_DATABASE_URL", raising=False)
    monkeypatch.delenv("STORELOOP_PG_SYNCHRONOUS_COMMIT", raising=False)
    shop, pipelines = Settings(), PipelineSettings()
    assert shop.layout == pipelines.layout
    assert shop.registry_path == pipelines.layout.registry == tmp_path / "shared" / "registry"
    assert shop.sqlalchemy_url == pipelines.sqlalchemy_url
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    assert Settings().sqlalchemy_url == PipelineSettings().sqlalchemy_url


def test_pipelines_import_nothing_from_serving():
    code = (
        "import sys, pipelines; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'serving'))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
