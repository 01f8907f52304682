"""storeloop's Dagster lakehouse: ``dg dev -m pipelines`` (or ``dagster dev``) loads :data:`defs`.

Locations come from the shop's own variables (``DATA_DIR``, ``DATABASE_URL``, ``EVENTS_URL``),
read by the pipelines' own settings (``pipelines/settings.py``), so the pipelines always read
the database and event log (or shared event stream) the shop writes.
"""

from __future__ import annotations

from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings

_settings = PipelineSettings()
defs = build_definitions(
    _settings.data_dir,
    _settings.sqlalchemy_url,
    events_url=_settings.events_url,
    events_stream=_settings.events_stream,
    registry_dir=_settings.registry_dir,
    lake_dir=_settings.lake_dir,
)

__all__ = ["build_definitions", "defs"]
