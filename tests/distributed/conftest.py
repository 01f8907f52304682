"""Fixtures of the multi-machine tests (defined in ``services.py``, shared with other suites)."""

from tests.distributed.services import (  # noqa: F401
    clean_stream,
    nats_url,
    pg_schema_url,
    stream_name,
)
from tests.serving_ml.conftest import settings  # noqa: E402, F401 - fast reload intervals
