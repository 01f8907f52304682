"""The IETF httpapi Idempotency-Key semantics for ``POST /api/v1/orders``.

The key row is inserted in the same transaction that creates the order, so "the key exists" and
"the order exists" are one fact: a crash before that commit leaves neither, and a crash after it
leaves an in-flight key that points at the order and can be resumed. Concurrent duplicates
collide on the primary key; the database, not a read-then-write check, decides the winner.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import TextClause, delete, insert, select, text, update
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import BadRequest, ProblemError
from serving.db.tables.idempotency import IdempotencyKey

MAX_KEY_LENGTH = 255

# Which of many (user, key) pairs exist, by the primary key: one index probe per pair. A read by
# key alone cannot use that index (user_id comes first) and scanned every key kept for 24 hours:
# 3 ms per checkout batch with 5,000 keys, 180 ms with a million (docs/checkout.md). LATERAL with
# LIMIT keeps the probe per pair whatever the statistics say: as a plain join, a plan prepared
# while the table was small hashed the pairs and scanned the whole table, and stayed so.
_KNOWN_PAIRS_POSTGRESQL = text(
    "SELECT p.user_id, p.key"
    " FROM unnest(CAST(:b_users AS INTEGER[]), CAST(:b_keys AS VARCHAR[])) AS p(user_id, key)"
    " CROSS JOIN LATERAL (SELECT 1 FROM idempotency_keys AS k"
    " WHERE k.user_id = p.user_id AND k.key = p.key LIMIT 1) AS found"
)
_KNOWN_PAIRS_SQLITE = text(
    "SELECT k.user_id, k.key FROM json_each(:b_pairs) AS p JOIN idempotency_keys AS k"
    " ON k.user_id = json_extract(p.value, '$[0]') AND k.key = json_extract(p.value, '$[1]')"
)


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise ProblemError(
            400,
            "Idempotency-Key missing",
            "This request needs an Idempotency-Key header",
            type_="https://storeloop.dev/problems/idempotency-key-missing",
        )
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    return key


def request_hash(body: dict[str, Any]) -> str:
    """A fingerprint of the request body, independent of key order and whitespace."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def known_pairs_query(
    dialect_name: str, pairs: list[tuple[int, str]]
) -> tuple[TextClause, dict[str, Any]]:
    """The statement and parameters that read which of ``pairs`` already have a key row.

    Its text does not depend on how many pairs there are, so the server (or SQLite's statement
    cache) keeps one plan for every batch size."""
    if dialect_name == "postgresql":
        return _KNOWN_PAIRS_POSTGRESQL, {
            "b_users": [user for user, _ in pairs],
            "b_keys": [key for _, key in pairs],
        }
    return _KNOWN_PAIRS_SQLITE, {"b_pairs": orjson.dumps(pairs).decode()}


@dataclass(frozen=True)
class Existing:
    """What a colliding key holds: a stored response, or an order to resume."""

    status: str
    order_id: str | None
    response_status: int | None
    response_body: Any


def insert_key(
    session: Session,
    *,
    user_id: int,
    key: str,
    fingerprint: str,
    order_id: str,
    lock_seconds: float,
    keep_hours: int,
) -> None:
    """Claim the key inside the order's transaction (IntegrityError if it is taken)."""
    now = utcnow()
    session.execute(
        insert(IdempotencyKey).values(
            user_id=user_id,
            key=key,
            request_hash=fingerprint,
            status="in_flight",
            order_id=order_id,
            response_status=None,
            response_body=None,
            locked_until=now + timedelta(seconds=lock_seconds),
            created_at=now,
            expires_at=now + timedelta(hours=keep_hours),
        )
    )


def store_response(
    session: Session, *, user_id: int, key: str, status: int, body: Any, order_id: str | None
) -> None:
    """Record the final response (inside the transaction that made it final)."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status="done", response_status=status, response_body=body, order_id=order_id)
    )


def examine(
    session: Session, *, user_id: int, key: str, fingerprint: str, lock_seconds: float
) -> Existing | None:
    """Classify a key that already exists; None if it expired and was removed.

    Raises 422 for a different body and 409 while the first request is still running. An
    in-flight key whose lock ran out belongs to a request that died: the caller takes it over
    (the conditional update lets exactly one retry win) and resumes that order.
    """
    row = session.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar()
    now = utcnow()
    if row is None:
        return None
    if row.expires_at <= now:
        session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
            )
        )
        session.commit()
        return None
    if row.request_hash != fingerprint:
        raise ProblemError(
            422,
            "Idempotency-Key reused",
            "This Idempotency-Key was already used with a different request body",
            type_="https://storeloop.dev/problems/idempotency-key-reused",
        )
    if row.status == "done":
        return Existing("done", row.order_id, row.response_status, row.response_body)
    if row.locked_until > now:
        raise ProblemError(
            409,
            "Request in flight",
            "A request with this Idempotency-Key is still being processed",
            type_="https://storeloop.dev/problems/idempotency-key-in-flight",
            headers={"Retry-After": "1"},
        )
    taken = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.status == "in_flight",
            IdempotencyKey.locked_until == row.locked_until,
        )
        .values(locked_until=now + timedelta(seconds=lock_seconds))
    )
    session.commit()
    if taken.rowcount != 1:
        raise ProblemError(
            409,
            "Request in flight",
            "A request with this Idempotency-Key is still being processed",
            type_="https://storeloop.dev/problems/idempotency-key-in-flight",
            headers={"Retry-After": "1"},
        )
    return Existing("resume", row.order_id, None, None)


def purge_expired(session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow()))
    session.commit()
    return result.rowcount or 0
