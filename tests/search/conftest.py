"""Shared fixtures: one tantivy index over the fixed test catalog, built once per session."""

from __future__ import annotations

import pytest
from search_catalog import CATALOG

from models.search.tantivy_backend import TantivyBackend


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> TantivyBackend:
    """Read-only backend over ``CATALOG``; tests that mutate build their own."""
    engine = TantivyBackend(tmp_path_factory.mktemp("search") / "index")
    engine.build(CATALOG)
    return engine
