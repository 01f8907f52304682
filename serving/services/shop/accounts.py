"""Accounts: registration, authentication, admin creation and anonymous-session linking."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, Unauthorized
from serving.core.security import hash_password, verify_password
from serving.db.tables import SessionLink, User


def normalise_email(email: str) -> str:
    return email.strip().lower()


def register_user(
    session: Session, *, email: str, password: str, full_name: str = "", role: str = "customer"
) -> User:
    """Create a user; a taken email is a 409, whatever its letter case."""
    email = normalise_email(email)
    now = utcnow()
    user = User(
        email=email,
        password_hash=hash_password(password),
        full_name=full_name,
        role=role,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"An account with email {email} already exists") from exc
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """Return the user for these credentials; one message for every failure."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.is_active:
        raise Unauthorized("Incorrect email or password")
    return user


def create_admin(session: Session, *, email: str, password: str) -> User:
    """Create an admin, or promote and re-password an existing account (idempotent)."""
    existing = session.scalar(select(User).where(User.email == normalise_email(email)))
    if existing is None:
        return register_user(session, email=email, password=password, role="admin")
    existing.role = "admin"
    existing.password_hash = hash_password(password)
    existing.updated_at = utcnow()
    session.commit()
    return existing


def link_session(session: Session, *, session_id: str, user_id: int) -> bool:
    """Attribute an anonymous session to a user from now on; True if newly linked."""
    link = session.get(SessionLink, session_id)
    if link is not None:
        if link.user_id != user_id:
            # A session id moves with its browser: a different user signing in takes it over.
            link.user_id = user_id
            link.linked_at = utcnow()
            session.commit()
            return True
        return False
    session.add(SessionLink(session_id=session_id, user_id=user_id, linked_at=utcnow()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def count_users(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(User)) or 0
