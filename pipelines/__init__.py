"""storeloop's Dagster lakehouse: ``dagster dev -m pipelines`` loads :data:`defs`.

Locations come from the shop's own settings (``DATA_DIR``, ``DATABASE_URL``), so the pipelines
always read the database and event log the shop writes.
"""

from __future__ import annotations

from pipelines.definitions import build_definitions
from serving.core.config import Settings

_settings = Settings()
defs = build_definitions(_settings.data_dir, _settings.sqlalchemy_url)

__all__ = ["build_definitions", "defs"]
