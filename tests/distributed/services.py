"""Real servers for the multi-machine tests: PostgreSQL, NATS JetStream (fixtures, helpers).

Each test run gets its own PostgreSQL schema and its own stream names, so parallel runs (two
checkouts, two xdist workers) never see each other's state. A server that is truly absent
skips the test with the reason; in CI (``CI=true``) PostgreSQL and NATS are mandatory and an
absent one fails the test instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine

from serving.core.config import Settings
from tests.conftest import (
    PG_URL,
    create_pg_schema,
    drop_pg_schema,
    pg_schema_name,
    pg_url_for_schema,
)

NATS_URL = os.environ.get("STORELOOP_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _absent(message: str) -> None:
    """Skip outside CI; in CI the service is part of the machine, so its absence is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL (``postgresql://``, as a user writes it) whose search_path is a fresh
    schema of this test, dropped afterwards."""
    schema = f"{pg_schema_name('dg')}_{secrets.token_hex(3)}"
    admin = create_engine(Settings(database_url=PG_URL).sqlalchemy_url)
    try:
        with admin.begin() as conn:
            create_pg_schema(conn, schema)
    except Exception as exc:  # noqa: BLE001
        _absent(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
    finally:
        admin.dispose()
    yield pg_url_for_schema(schema)
    drop_pg_schema(schema)


@pytest.fixture
def nats_url() -> str:
    """The NATS server's URL, after checking that it answers and has JetStream enabled."""
    try:
        import nats
    except ImportError:  # pragma: no cover - the distributed extra is part of make install
        pytest.skip("nats-py is not installed (pip install -e '.[distributed]')")

    async def probe() -> None:
        nc = await nats.connect(NATS_URL, connect_timeout=2, max_reconnect_attempts=0)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # noqa: BLE001
        _absent(f"NATS JetStream at {NATS_URL} is unreachable: {exc!r}")
    return NATS_URL


@pytest.fixture
def stream_name() -> str:
    """A JetStream stream name of this test alone."""
    return f"storeloop_test_{secrets.token_hex(5)}"


@pytest.fixture
def clean_stream(nats_url: str, stream_name: str) -> Iterator[str]:
    """``stream_name``, deleted from the server after the test."""
    yield stream_name
    asyncio.run(_delete_stream(nats_url, stream_name))


async def _delete_stream(url: str, stream: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def read_stream(url: str, stream: str) -> list[bytes]:
    """Every message payload stored in ``stream``, in stream order (read by sequence number,
    without a consumer, so reading never changes what the lake's consumer will see)."""

    async def read() -> list[bytes]:
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                return []
            out = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                with contextlib.suppress(NotFoundError):
                    out.append((await js.get_msg(stream, seq)).data)
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def stream_lines(url: str, stream: str) -> list[bytes]:
    """The event lines of every message in ``stream``."""
    return [line for data in read_stream(url, stream) for line in data.splitlines() if line]
