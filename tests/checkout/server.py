"""A real uvicorn server in a subprocess, and direct set-up of users and products."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from serving.core.config import Settings
from serving.core.security import TokenService, use_fast_hashing
from serving.db.engine import Database
from serving.services import accounts, catalog

ROOT = Path(__file__).resolve().parents[2]
#: Bytecode for server subprocesses, outside the source tree and the virtualenv.
PYCACHE = Path(tempfile.gettempdir()) / "storeloop-pycache"


def server_env() -> dict[str, str]:
    """The environment for a server subprocess, with a bytecode cache of its own.

    With ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` in the virtualenv, every server
    start compiles the whole app and its dependencies (sklearn, scipy …) from source: seconds of
    CPU per start, over a minute on a loaded machine. A cache under the temp dir avoids that
    without writing into the source tree or the shared virtualenv.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(PYCACHE))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``uvicorn serving.asgi:app`` pointed at the test database."""

    def __init__(self, db_url: str, data_dir: Path, jwt_secret: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **server_env(),
            "DATA_DIR": str(data_dir),
            "DATABASE_URL": db_url,
            "JWT_SECRET": jwt_secret,
            "STORELOOP_RATE_LIMIT_ENABLED": "false",
            "STORELOOP_LOG_LEVEL": "warning",
            "STORELOOP_ENVIRONMENT": "test",
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "serving.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            time.sleep(0.05)
        self.stop()  # a server left running would poll the test tables for the rest of the run
        raise RuntimeError("server did not start")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def poll(predicate, *, timeout: float, interval: float = 0.05):
    """Wait for ``predicate()`` to be truthy, up to a deadline (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


class Shop:
    """Users, tokens and products written straight to the database."""

    def __init__(self, db_url: str, jwt_secret: str) -> None:
        use_fast_hashing(True)
        self.db = Database(Settings(database_url=db_url).sqlalchemy_url)
        self.tokens = TokenService(jwt_secret)
        with self.db.session(write=True) as s:
            self.admin_id = accounts.create_admin(
                s, email="admin@example.com", password="admin-password-1"
            ).id
            cat = catalog.create_category(s, slug="race", name="Race", parent_id=None)
        self.category_id = cat["id"]

    def product(self, stock: int, price: int = 2500) -> int:
        with self.db.session(write=True) as s:
            p = catalog.create_product(
                s,
                data={
                    "sku": "R-" + secrets.token_hex(4),
                    "title": "Racing thing",
                    "category_id": self.category_id,
                    "price_minor": price,
                    "initial_stock": stock,
                },
                actor_user_id=self.admin_id,
            )
        return p["id"]

    def customers(self, n: int) -> list[str]:
        tokens = []
        with self.db.session(write=True) as s:
            for _ in range(n):
                user = accounts.register_user(
                    s, email=f"c{secrets.token_hex(5)}@example.com", password="pw-123456789"
                )
                tokens.append(
                    self.tokens.issue(user_id=user.id, role="customer", now=datetime.now(UTC))[0]
                )
        return tokens

    def close(self) -> None:
        self.db.dispose()
