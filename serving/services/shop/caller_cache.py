"""Signed-in callers' user rows, reused for a moment instead of read on every request.

Every authenticated request checks that its user still exists and is active, and reads the
role from the database rather than the token. On SQLite that one primary-key read cost more in
SQLAlchemy's connect/begin/rollback/close than in the query (~25% of the event loop's time
under checkout load), so a row is kept for ``seconds`` per process (docs/security.md):

- keyed by the exact access token, so a row can never be handed to another token's user (not
  even one that reuses a deleted user's id);
- any UPDATE, DELETE, TRUNCATE … of the users table run through this process's engine drops
  every cached row at once, when the statement runs and again when its connection goes back to
  the pool (after the commit), so this process's own deactivations and demotions hold at once;
- another process's take effect within ``seconds`` (the row is re-read after that).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, event, select
from sqlalchemy.orm import make_transient_to_detached

from serving.core.errors import Unauthorized
from serving.core.security import TokenService
from serving.db.tables import User

__all__ = ["MISS", "CallerCache", "CallerRow", "check_caller"]

#: What :meth:`CallerCache.peek` answers when it has nothing fresh for a token.
MISS = object()

# The password hash is left out: no caller check needs it, and it need not sit in a cache.
_COLUMNS = [c for c in User.__table__.c if c.key != "password_hash"]
_READ = select(*_COLUMNS).where(User.__table__.c.id == bindparam("b_user_id"))
# Statements that may change a user row; a false positive only costs a re-read.
_USERS_WRITE = re.compile(
    r"\s*(?:update|delete|truncate|drop|alter|replace|merge|insert\s+or\s+replace)\b"
    r".*?\busers\b",
    re.IGNORECASE | re.DOTALL,
)
_WROTE_USERS = "storeloop_wrote_users"


@dataclass(frozen=True, slots=True)
class CallerRow:
    """A user's columns (without the password hash) as read at one moment."""

    values: dict[str, Any]

    @property
    def id(self) -> int:
        return self.values["id"]

    @property
    def role(self) -> str:
        return self.values["role"]

    @property
    def is_active(self) -> bool:
        return bool(self.values["is_active"])

    def to_user(self) -> User:
        """A fresh detached ``User`` per call, as a closed read session would leave it."""
        user = User(**self.values)
        make_transient_to_detached(user)
        return user


class CallerCache:
    """token -> user row, for at most ``seconds``; ``seconds == 0`` reads on every call."""

    def __init__(self, engine: Engine, *, seconds: float, max_entries: int = 10_000) -> None:
        self._engine = engine
        self.seconds = seconds
        self.max_entries = max_entries
        self.enabled = seconds > 0 and max_entries > 0
        # token -> (monotonic deadline, generation when read, row or None for no such user)
        self._rows: OrderedDict[str, tuple[float, int, CallerRow | None]] = OrderedDict()
        self._generation = 0
        self._lock = threading.Lock()
        if self.enabled:
            event.listen(engine, "after_cursor_execute", self._on_execute)
            event.listen(engine, "checkin", self._on_checkin)

    def lookup(self, token: str, user_id: int) -> CallerRow | None:
        """The row of ``user_id`` (whose verified token is ``token``), None if there is none."""
        if not self.enabled:
            return self._read(user_id)
        now = time.monotonic()
        with self._lock:
            hit = self._rows.get(token)
            if hit is not None and hit[0] > now and hit[1] == self._generation:
                return hit[2]
            generation = self._generation
        row = self._read(user_id)
        with self._lock:
            # A users write that ran while we read may have been missed by this read: skip.
            if generation == self._generation:
                self._rows[token] = (now + self.seconds, generation, row)
                self._rows.move_to_end(token)
                while len(self._rows) > self.max_entries:
                    self._rows.popitem(last=False)
        return row

    def peek(self, token: str) -> CallerRow | None | object:
        """The fresh cached row for ``token`` (None: no such user) without reading the
        database; :data:`MISS` when nothing fresh is cached. For a caller that checks the user
        itself in a query it makes anyway (the checkout batch)."""
        if not self.enabled:
            return MISS
        now = time.monotonic()
        with self._lock:
            hit = self._rows.get(token)
            if hit is not None and hit[0] > now and hit[1] == self._generation:
                return hit[2]
        return MISS

    def invalidate(self) -> None:
        """Forget every row (this process changed the users table)."""
        with self._lock:
            self._generation += 1
            self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)

    def _read(self, user_id: int) -> CallerRow | None:
        with self._engine.connect() as conn:
            row = conn.execute(_READ, {"b_user_id": user_id}).first()
        return None if row is None else CallerRow(row._asdict())

    def _on_execute(self, conn, _cursor, statement, _params, _context, _many) -> None:
        if _USERS_WRITE.match(statement):
            conn.info[_WROTE_USERS] = True
            self.invalidate()

    def _on_checkin(self, _dbapi_conn, record) -> None:
        # After the commit or rollback: a read between the UPDATE and the COMMIT saw the old row.
        if record is not None and record.info.pop(_WROTE_USERS, False):
            self.invalidate()


def check_caller(tokens: TokenService, callers: CallerCache, token: str) -> CallerRow:
    """The caller's row for a bearer token; a bad token or an unknown or inactive user is 401."""
    claims = tokens.verify(token)
    row = callers.lookup(token, claims.user_id)
    if row is None or not row.is_active:
        raise Unauthorized("Invalid access token")
    return row
