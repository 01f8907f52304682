"""The signed-in user."""

from __future__ import annotations

from fastapi import APIRouter

from serving.api.deps import CurrentUser
from serving.api.schemas.accounts import UserPublic

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me", response_model=UserPublic, responses={401: {}})
def me(user: CurrentUser) -> UserPublic:
    """Who the access token belongs to."""
    return UserPublic.model_validate(user)
