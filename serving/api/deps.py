"""Dependencies named once, so handler signatures show what each handler uses."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from serving.components import Components, components_of
from serving.core.config import Settings
from serving.core.errors import Forbidden, ProblemError, Unauthorized
from serving.db.engine import Database
from serving.db.tables import User
from serving.eventlog.sink import EventSink
from serving.services.checkout import service as checkout
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.ml.recs import RecsServing
from serving.services.shop.caller_cache import MISS, CallerRow, check_caller

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_components(request: Request) -> Components:
    return components_of(request)


ComponentsDep = Annotated[Components, Depends(get_components)]


async def get_settings(request: Request) -> Settings:
    return components_of(request).settings


async def get_db(request: Request) -> Database:
    return components_of(request).db


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request; unsafe methods get a write session (SQLite: BEGIN IMMEDIATE).

    An async dependency on purpose: creating a session does no I/O, and closing it runs on the
    event loop rather than in a worker thread. On SQLite a write transaction left open by a
    failing handler holds the database's write lock until the session closes; if closing needed
    a free threadpool thread while every thread waits for that lock, the process would stall.
    """
    session = components_of(request).db.session(write=request.method not in _SAFE_METHODS)
    try:
        yield session
    finally:
        session.close()


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_db)]
SessionDep = Annotated[Session, Depends(get_session)]
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the user of a verified bearer token.

    ``row`` is the user's fresh cached row when one already vouches for the caller (active),
    else None: the check is still to be made, by :meth:`check` (one primary-key read on a bare
    read-only connection) or by a query the handler makes anyway (the checkout batch reads
    every waiting caller's user inside its first transaction).
    """

    user_id: int
    token: str = field(repr=False)
    row: CallerRow | None = field(repr=False)
    _components: Components = field(repr=False)

    @property
    def vouched(self) -> bool:
        return self.row is not None

    def check(self) -> CallerRow:
        """The caller's row; an unknown or inactive user is a 401. The role comes from the
        database, not the token, so a demoted admin loses access at once in this process
        (within ``auth_user_cache_seconds`` in the others)."""
        if self.row is not None:
            return self.row
        c = self._components
        return check_caller(c.tokens, c.callers, self.token)


async def get_caller(request: Request, token: TokenDep) -> Caller | None:
    """The one "who is calling" dependency: None for an anonymous caller, a bad token is 401.

    The token is verified (a cached verification, core/security.py) and the caller row cache
    (services/shop/caller_cache.py) is only peeked: no read happens here, so a handler that
    checks the user in a query of its own pays nothing more, and the others call
    :meth:`Caller.check` (or depend on ``OptionalUser``/``CurrentUser``, which do). A user
    the cache already knows to be gone or inactive is refused at once.

    Like every dependency here it is ``async``: FastAPI runs a plain ``def`` dependency in the
    threadpool, and a request with four of them paid four thread hand-offs (each a GIL
    hand-over under load) before its handler even started.
    """
    if token is None:
        return None
    c = components_of(request)
    user_id = c.tokens.verify(token).user_id
    row = c.callers.peek(token)
    if row is not MISS and (row is None or not row.is_active):
        raise Unauthorized("Invalid access token")
    request.state.user_id = user_id
    return Caller(user_id, token, None if row is MISS else row, c)


OptionalCaller = Annotated[Caller | None, Depends(get_caller)]


async def get_signed_in(caller: OptionalCaller) -> Caller:
    if caller is None:
        raise Unauthorized()
    return caller


#: The signed-in caller, its row not read yet unless cached (:meth:`Caller.check` reads it).
CallerDep = Annotated[Caller, Depends(get_signed_in)]


async def get_caller_id(caller: CallerDep) -> int:
    """The signed-in caller's id, checked (:meth:`Caller.check`)."""
    return caller.check().id


async def get_optional_caller_id(caller: OptionalCaller) -> int | None:
    return None if caller is None else caller.check().id


CallerId = Annotated[int, Depends(get_caller_id)]
OptionalCallerId = Annotated[int | None, Depends(get_optional_caller_id)]


async def get_optional_user(caller: OptionalCaller) -> User | None:
    """The signed-in user, checked (:meth:`Caller.check`), or None for an anonymous caller.

    The handler gets its own detached ``User`` built from the cached row: never read in the
    request's write session (on SQLite that would take the write lock before the handler even
    starts).
    """
    return None if caller is None else caller.check().to_user()


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


async def get_recs(request: Request) -> RecsServing:
    recs = components_of(request).recs
    if recs is None:
        raise ProblemError(503, "Service Unavailable", "Recommendations are not running")
    return recs


#: The recommendation service; 503 problem+json while it is not running.
RecsDep = Annotated[RecsServing, Depends(get_recs)]


async def get_checkout(request: Request) -> CheckoutRuntime:
    return checkout.runtime(request.app)


#: The checkout runtime (built on first use when the lifespan did not start it).
CheckoutDep = Annotated[CheckoutRuntime, Depends(get_checkout)]


async def get_session_id(request: Request, response: Response) -> str:
    """The anonymous session id from ``X-Session-Id`` or the cookie; one is minted if absent."""
    settings = components_of(request).settings
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


async def get_events(request: Request) -> EventSink:
    return EventSink(request)


EventsDep = Annotated[EventSink, Depends(get_events)]
