"""Registration and OAuth2 password-flow tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import OAuth2PasswordRequestForm

from serving.api.deps import DatabaseDep, EventsDep, SessionDep, SessionId
from serving.api.schemas.accounts import Token, UserCreate, UserPublic
from serving.api.schemas.common import NUL_MESSAGE
from serving.components import components_of
from serving.core.errors import Unauthorized
from serving.services.shop import accounts
from serving.services.shop.login_hooks import run_login_hooks
from serving.services.shop.login_throttle import LoginThrottle
from serving.services.shop.password_policy import check_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserPublic,
    responses={409: {"description": "Email already registered"}, 422: {}},
)
def register(
    request: Request, body: UserCreate, session: SessionDep, events: EventsDep
) -> UserPublic:
    """Create a customer account; a common or easily guessed password is a 422."""
    check_password(
        body.password,
        min_score=components_of(request).settings.password_min_score,
        user_inputs=[body.email, body.full_name],
    )
    user = accounts.register_user(
        session, email=body.email, password=body.password, full_name=body.full_name
    )
    events.emit("user_registered", user_id=user.id)
    return UserPublic.model_validate(user)


def _refuse_unstorable_username(username: str) -> None:
    """The form's username is looked up in a text column, which PostgreSQL cannot hold NUL in
    (its driver raised: a misleading 422 "out of range") while SQLite just found no one (401):
    refused here as JSON bodies refuse it, one answer on both databases."""
    if "\x00" in username:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", "username"),
                    "msg": f"Value error, {NUL_MESSAGE}",
                    "type": "value_error",
                }
            ]
        )


@router.post("/token", response_model=Token, responses={401: {}, 422: {}, 429: {}})
def token(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    db: DatabaseDep,
    session_id: SessionId,
    events: EventsDep,
) -> Token:
    """Exchange email and password for a short-lived access token.

    The caller's anonymous session is linked to the account, so its history and cart count
    for the user from now on.
    """
    _refuse_unstorable_username(form.username)
    throttle: LoginThrottle = components_of(request).login_throttle
    email = accounts.normalise_email(form.username)
    address = request.client.host if request.client else "unknown"
    throttle.check(email, address)
    try:
        # Password checks run in a read session: no write lock is held while argon2 works.
        with db.session() as read:
            user = accounts.authenticate(read, email=email, password=form.password)
    except Unauthorized:
        throttle.failed(email, address)
        raise
    throttle.succeeded(email, address)
    # Wall-clock time, not the simulated clock: token expiry is checked against real time.
    now = datetime.now(UTC)
    access, expires = components_of(request).tokens.issue(user_id=user.id, role=user.role, now=now)
    with db.session(write=True) as session:
        linked = accounts.link_session(session, session_id=session_id, user_id=user.id)
        merge = run_login_hooks(session, session_id=session_id, user_id=user.id, events=events)
    events.emit("user_login", user_id=user.id, session_id=session_id, props={"linked": linked})
    return Token(
        access_token=access,
        expires_in=int((expires - now).total_seconds()),
        cart_merge=merge,
    )
