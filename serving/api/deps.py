"""Dependencies named once, so handler signatures show what each handler uses."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.config import Settings
from serving.core.errors import Forbidden, Unauthorized
from serving.core.security import TokenService
from serving.db.engine import Database
from serving.db.tables import User
from serving.eventlog.records import server_record
from serving.services.caller_cache import check_caller

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_db(request: Request) -> Database:
    return request.app.state.db


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; unsafe methods get a write session (SQLite: BEGIN IMMEDIATE).

    An async dependency on purpose: creating a session does no I/O, and closing it runs on the
    event loop rather than in a worker thread. On SQLite a write transaction left open by a
    failing handler holds the database's write lock until the session closes; if closing needed
    a free threadpool thread while every thread waits for that lock, the process would stall.
    """
    db: Database = request.app.state.db
    session = db.session(write=request.method not in _SAFE_METHODS)
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


async def get_tokens(request: Request) -> TokenService:
    return request.app.state.tokens


async def get_optional_user(request: Request, token: TokenDep) -> User | None:
    """The signed-in user, or None for an anonymous caller; a bad token is always a 401.

    The user's row comes from ``app.state.callers`` (services/caller_cache.py): read on a bare
    read-only connection, never in the request's write session (on SQLite that would take the
    write lock before the handler even starts), and reused for ``auth_user_cache_seconds``.
    The handler gets its own detached ``User`` built from it.

    Like every dependency here it is ``async``: FastAPI runs a plain ``def`` dependency in the
    threadpool, and a request with four of them paid four thread hand-offs (each a GIL
    hand-over under load) before its handler even started. A cache miss's one primary-key read
    runs inline, as the recommendations caller check does.
    """
    if token is None:
        return None
    state = request.app.state
    row = check_caller(state.tokens, state.callers, token)
    request.state.user_id = row.id
    return row.to_user()


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


async def get_current_user(user: OptionalUser) -> User:
    if user is None:
        raise Unauthorized()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_admin(user: CurrentUser) -> User:
    # The role comes from the database, not the token, so a demoted admin loses access at once.
    if user.role != "admin":
        raise Forbidden("This action needs the admin role")
    return user


AdminUser = Annotated[User, Depends(get_admin)]


async def get_session_id(request: Request, response: Response) -> str:
    """The anonymous session id from ``X-Session-Id`` or the cookie; one is minted if absent."""
    settings: Settings = request.app.state.settings
    raw = request.headers.get("x-session-id") or request.cookies.get(settings.session_cookie)
    if raw and _SESSION_ID.match(raw):
        return raw
    session_id = secrets.token_urlsafe(18)
    response.set_cookie(
        settings.session_cookie,
        session_id,
        max_age=60 * 60 * 24 * 365,
        httponly=True,
        samesite="lax",
        secure=settings.environment == "production",
    )
    response.headers["X-Session-Id"] = session_id
    return session_id


SessionId = Annotated[str, Depends(get_session_id)]


class EventSink:
    """Writes server-side domain events into the clickstream log (no-op without one).

    Events are queued for the log's next group commit without waiting for the fsync: the state
    change is already committed in the database, which stays the source of truth, so a request
    should not pay the log's latency, and a failing log write never turns it into an error.
    Timestamps come from the injected clock, so simulated shoppers' events carry simulated time.
    """

    def __init__(self, request: Request | None = None, *, log: Any = None, request_id=None):
        if request is not None:
            log = getattr(request.app.state, "event_log", None)
            request_id = getattr(request.state, "request_id", None)
        self._log = log
        self._request_id = request_id

    def emit(self, event_type: str, **fields: Any) -> None:
        self.emit_many([(event_type, fields)])

    @property
    def log(self) -> Any:
        """The event log these events go to (None without one)."""
        return self._log

    def records(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """One event as a stored record, for a caller that submits many requests' events to
        :attr:`log` together (the checkout batch: one hand-over to the writer per batch)."""
        when = utcnow().timestamp()
        return server_record(event_type, when, **{"request_id": self._request_id, **fields})

    def emit_many(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self._log is None or not events:
            return
        try:
            when = utcnow().timestamp()
            records = [
                server_record(event_type, when, **{"request_id": self._request_id, **fields})
                for event_type, fields in events
            ]
            self._log.submit(records).add_done_callback(_report_failure)
        except Exception:
            _events_log.exception("could not log %s", events[0][0])


_events_log = logging.getLogger("storeloop.events")


def _report_failure(future) -> None:
    if future.exception() is not None:
        _events_log.error("event log write failed: %s", future.exception())


async def get_events(request: Request) -> EventSink:
    return EventSink(request)


EventsDep = Annotated[EventSink, Depends(get_events)]
