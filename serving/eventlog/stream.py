"""EventStream: the writer's sink for a shared NATS JetStream stream (``EVENTS_URL``).

Why: local segments live on one host's disk, so a second API host's events never reach the
lake. With a stream every host appends to one durable log that the lake consumes. The promise
stays the same as for segments: an event is acknowledged to its client only once the stream
server has acknowledged storing it (a JetStream publish ack), so a SIGKILLed host loses nothing
it acknowledged.

The writer thread is synchronous and nats-py is asyncio, so the sink runs its own event loop
in a daemon thread and the writer waits on the publish futures. One message carries one
caller's lines (split only when bigger than the server's max payload), each with a
``Nats-Msg-Id``; a timed-out publish is retried once under the same id, and the server's
duplicate window drops the copy if the first one had been stored after all.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from features.event_stream import DEFAULT_STREAM, ensure_stream, import_nats, subject

log = logging.getLogger(__name__)

#: Room left in a message for headers and the protocol line.
_HEADROOM = 4096


class EventStreamError(RuntimeError):
    """The stream did not acknowledge a publish (or the sink is closed)."""


class EventStream:
    """Publishes encoded event lines to ``stream`` and returns once the server stored them."""

    def __init__(
        self,
        url: str,
        stream: str = DEFAULT_STREAM,
        *,
        publish_timeout: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> None:
        nats = import_nats()
        self.url = url
        self.stream = stream
        self.subject = subject(stream)
        self.publish_timeout = publish_timeout
        self.messages_published = 0
        self._prefix = secrets.token_hex(6)  # message ids: this sink's prefix + a counter
        self._counter = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="eventstream-loop", daemon=True
        )
        self._thread.start()
        try:
            self._nc = self._call(self._connect(nats, connect_timeout), connect_timeout * 3)
        except BaseException:
            self._stop_loop()
            raise
        self._js = self._nc.jetstream(timeout=publish_timeout)
        self._max_payload = max(1024, int(self._nc.max_payload) - _HEADROOM)

    async def _connect(self, nats: Any, connect_timeout: float) -> Any:
        nc = await nats.connect(
            self.url,
            connect_timeout=connect_timeout,
            max_reconnect_attempts=-1,  # a broker restart must not need a shop restart
            reconnect_time_wait=0.5,
            name="storeloop-api",
        )
        await ensure_stream(nc.jetstream(timeout=connect_timeout), self.stream)
        return nc

    def _call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def chunks(self, data: bytes) -> list[bytes]:
        """``data`` cut at line ends into messages no bigger than the server takes."""
        if len(data) <= self._max_payload:
            return [data]
        out: list[bytes] = []
        start = 0
        while start < len(data):
            end = data.rfind(b"\n", start, start + self._max_payload)
            if end < start:
                raise EventStreamError("one event line is larger than the stream's max payload")
            out.append(data[start : end + 1])
            start = end + 1
        return out

    def publish(self, payloads: Sequence[bytes]) -> list[BaseException | None]:
        """Publish each payload; per payload, None once stored or the error that stopped it.

        Payloads are independent (one per caller), so one failing does not fail the others.
        """
        jobs: list[list[tuple[str, bytes]] | BaseException] = []
        for data in payloads:
            try:
                parts = self.chunks(data)
            except EventStreamError as exc:
                jobs.append(exc)
                continue
            messages = []
            for part in parts:
                self._counter += 1
                messages.append((f"{self._prefix}-{self._counter}", part))
            jobs.append(messages)
        future: Future[list[BaseException | None]] = asyncio.run_coroutine_threadsafe(
            self._publish_all(jobs), self._loop
        )
        try:
            results = future.result(self.publish_timeout * 2 + 5)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, nothing was acknowledged
            future.cancel()
            error = EventStreamError(f"event stream publish failed: {exc!r}")
            return [error for _ in payloads]
        return results

    async def _publish_all(
        self, jobs: list[list[tuple[str, bytes]] | BaseException]
    ) -> list[BaseException | None]:
        async def one(messages: list[tuple[str, bytes]] | BaseException) -> BaseException | None:
            if isinstance(messages, BaseException):
                return messages
            try:
                await asyncio.gather(*(self._publish_one(mid, data) for mid, data in messages))
            except Exception as exc:  # noqa: BLE001 - reported per payload
                return EventStreamError(f"event stream publish failed: {exc!r}")
            return None

        return list(await asyncio.gather(*(one(messages) for messages in jobs)))

    async def _publish_one(self, msg_id: str, data: bytes) -> None:
        from nats.errors import TimeoutError as NatsTimeout

        headers = {"Nats-Msg-Id": msg_id}
        for attempt in range(2):
            try:
                ack = await self._js.publish(
                    self.subject, data, timeout=self.publish_timeout, headers=headers
                )
            except NatsTimeout:
                if attempt:
                    raise
                continue
            if ack.stream != self.stream:
                raise EventStreamError(f"published to {ack.stream!r}, not {self.stream!r}")
            self.messages_published += 1
            return

    def close(self) -> None:
        """Flush and close the connection, then stop the loop thread."""
        try:
            self._call(self._nc.drain(), 10)
        except Exception:  # noqa: BLE001 - closing anyway
            log.warning("event stream: could not drain the connection", exc_info=True)
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
