"""The pipelines' own settings: where the shop's data is, read from the shop's variables.

The pipelines read the database and the event log (or shared event stream) the shop writes and
publish to the registry it reads, so they take the same environment variables (``DATA_DIR``,
``DATABASE_URL``, ``EVENTS_URL``, ``STORELOOP_REGISTRY_DIR``, ``STORELOOP_LAKE_DIR``, ...)
but not the shop's ``Settings``: importing ``serving`` would make the pipelines depend on the
web app. The paths come from the layout both sides share (``features/layout.py``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.event_stream import DEFAULT_STREAM
from features.layout import DataLayout


def _std(name: str) -> AliasChoices:
    return AliasChoices(name, f"STORELOOP_{name}")


class PipelineSettings(BaseSettings):
    """Locations only: the pipelines have no other knobs in the environment yet."""

    model_config = SettingsConfigDict(
        env_prefix="STORELOOP_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path("data"), validation_alias=_std("DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_std("DATABASE_URL"))
    events_url: str | None = Field(None, validation_alias=_std("EVENTS_URL"))
    events_stream: str = DEFAULT_STREAM
    registry_dir: Path | None = None
    lake_dir: Path | None = None

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir, self.lake_dir, self.registry_dir)

    @property
    def sqlalchemy_url(self) -> str:
        """The shop database's URL with the driver SQLAlchemy should use (the pipelines only
        read it, so the shop's commit options do not apply here)."""
        url = self.database_url or f"sqlite:///{self.layout.database.resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return url
