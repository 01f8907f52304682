"""Property-based tests against the app's own OpenAPI schema (bounded in examples and time).

Every operation is called with generated input, signed in as an admin so that admin routes are
explored past the auth check. No response may be a 5xx, and every 4xx must be problem+json.
The examples per operation are bounded (``STORELOOP_SCHEMATHESIS_EXAMPLES``, default 15).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from serving.app import create_app

pytestmark = pytest.mark.slow

# 45 operations × 60 examples: up to 2,700 generated cases, about 20 s on this machine.
MAX_EXAMPLES = int(os.environ.get("STORELOOP_SCHEMATHESIS_EXAMPLES", "60"))
SKIP = {("GET", "/metrics")}


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    for result in schema.get_all_operations():
        yield result.ok()


@pytest.fixture
def api(settings):
    """An app of its own for schemathesis, which starts the lifespan of the app it calls and
    keeps it running until told otherwise (else until the process exits). Sharing the
    ``client`` fixture's app would run a second lifespan on it, whose components replace the
    first one's in ``app.state``: one set of them would never be stopped, and its pollers
    would go on reading the database through the next tests (and their TRUNCATEs)."""
    from schemathesis.python.asgi import shutdown_lifespans

    api = create_app(settings)
    yield api
    shutdown_lifespans()


def test_no_server_errors_and_every_4xx_is_problem_json(api, admin, small_catalog):
    headers = {"Authorization": f"Bearer {admin.token}"}
    failures: list[str] = []
    checked = 0
    for operation in _operations(api):
        if (operation.method.upper(), operation.path) in SKIP:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            response = case.call(headers=headers)
            label = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:300]}")
            elif 400 <= response.status_code < 500:
                ctype = response.headers.get("content-type") or ""
                if isinstance(ctype, list):
                    ctype = ctype[0] if ctype else ""
                if not ctype.startswith("application/problem+json"):
                    failures.append(f"{label}: content-type {ctype!r}")

        run()
        checked += 1
    assert checked >= 10
    assert failures == [], "\n".join(sorted(set(failures))[:30])
