"""The shared event stream's contract: stream and subject names, and the stream's settings.

The shop's writer (``serving.eventlog.stream``) publishes to it and the lake's landing step
(``pipelines.event_stream``) consumes it; both create the stream on first use with the same
settings, so whichever side starts first makes it. A message is a run of complete event lines
(the JSON Lines of the segment format), so a landed message is a valid segment fragment.

``nats`` (the maintained nats-py client, extra ``[distributed]``) is imported lazily: the
embedded default needs no broker and no client.
"""

from __future__ import annotations

from typing import Any, Final

DEFAULT_STREAM: Final = "storeloop_events"
DEFAULT_DURABLE: Final = "storeloop_lake"
#: A timed-out publish is retried once with the same message id; the server drops the copy
#: if the first one was stored after all (JetStream's duplicate window).
DUPLICATE_WINDOW_SECONDS: Final = 120.0


def subject(stream: str) -> str:
    """The one subject every API host publishes to."""
    return f"{stream}.events"


def import_nats() -> Any:
    """The nats package, or an ImportError that names the install command."""
    try:
        import nats
    except ImportError as exc:  # pragma: no cover - the extra is part of make install
        raise ImportError(
            "EVENTS_URL needs the NATS client: pip install -e '.[distributed]'"
        ) from exc
    return nats


async def ensure_stream(js: Any, stream: str) -> None:
    """Create the stream if it does not exist: file storage, kept by limits (not by consumer
    acks), so the lake can be rebuilt from it and another consumer can read it again."""
    import_nats()
    from nats.js.api import RetentionPolicy, StorageType, StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(stream)
        return
    except NotFoundError:
        pass
    await js.add_stream(
        StreamConfig(
            name=stream,
            subjects=[subject(stream)],
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )
    )
