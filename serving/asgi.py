"""The ASGI entry point for uvicorn (``serving.asgi:app``), configured from the environment."""

from serving.app import create_app

app = create_app()
