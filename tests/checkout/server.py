"""The shop under uvicorn on the test database (through devtools' one launcher)."""

from __future__ import annotations

from pathlib import Path

from devtools.server import ServerProcess, server_env


class Server(ServerProcess):
    """``uvicorn serving.asgi:app`` pointed at the test database (devtools' one launcher)."""

    def __init__(self, db_url: str, data_dir: Path, jwt_secret: str, **env: str) -> None:
        super().__init__(
            env={
                **server_env(),
                "DATA_DIR": str(data_dir),
                "DATABASE_URL": db_url,
                "JWT_SECRET": jwt_secret,
                "STORELOOP_RATE_LIMIT_ENABLED": "false",
                "STORELOOP_LOG_LEVEL": "warning",
                "STORELOOP_ENVIRONMENT": "test",
                **env,
            }
        )
