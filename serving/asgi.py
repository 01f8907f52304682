"""The ASGI entry point for uvicorn (``serving.asgi:app``), configured from the environment."""

from serving.app import create_app
from serving.core.config import Settings
from serving.core.logging import configure_logging

_settings = Settings()
configure_logging(_settings.log_level)
app = create_app(_settings)
