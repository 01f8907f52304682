"""Password hashing (argon2) and short-lived JWT access tokens (PyJWT, algorithm pinned)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import Unauthorized

# Moderate cost: argon2's defaults (64 MiB, 3 passes) make login cost ~50 ms on 2 cores,
# which under the checkout benchmark's login storms dominates. 19 MiB / 2 passes is OWASP's
# minimum recommended argon2id profile.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A hash of a random password, verified when the user does not exist so that timing does not
# tell which emails are registered.
_DUMMY_HASH = _hasher.hash("storeloop-dummy-password")

ROLES = ("customer", "seller", "admin")  # the role a sign-in puts in the token


def use_fast_hashing(enabled: bool) -> None:
    """Switch to a cheap argon2 profile; only simulation mode does this.

    Thousands of synthetic shoppers sign up and in within minutes; at ~20 ms per hash the
    simulator would spend most of its time hashing. Hashes made either way verify either way,
    since argon2 stores its parameters in the hash.
    """
    global _hasher
    _hasher = (
        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        if enabled
        else PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    expires_at: datetime


class TokenService:
    """Mints and checks access tokens; only one algorithm is ever accepted.

    Verified tokens are remembered (an LRU of ``cache_entries``, keyed by the exact token
    string): PyJWT's decode and HMAC were ~11% of the event loop's time under checkout load.
    Only a token that passed every check is stored, and a remembered one is still refused once
    its ``exp`` has passed, so the cache changes how often the signature is computed, never
    which tokens are accepted. 0 entries turns it off.
    """

    def __init__(
        self,
        secret: str,
        algorithm: str = "HS256",
        minutes: int = 30,
        *,
        cache_entries: int = 10_000,
    ) -> None:
        if algorithm.lower() == "none":
            raise ValueError("JWT algorithm 'none' is never allowed")
        self._secret = secret
        self.algorithm = algorithm
        self.lifetime = timedelta(minutes=minutes)
        self._cache_entries = cache_entries
        # token -> (claims, exp as a POSIX timestamp)
        self._verified: OrderedDict[str, tuple[TokenClaims, float]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(self, *, user_id: int, role: str, now: datetime) -> tuple[str, datetime]:
        expires = now + self.lifetime
        claims = {
            "sub": str(user_id),
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "iss": "storeloop",
        }
        return jwt.encode(claims, self._secret, algorithm=self.algorithm), expires

    def verify(self, token: str) -> TokenClaims:
        if self._cache_entries > 0:
            with self._lock:
                hit = self._verified.get(token)
                if hit is not None:
                    # PyJWT's rule, on the wall clock as PyJWT reads it: expired once exp <= now.
                    if hit[1] > time.time():
                        self._verified.move_to_end(token)
                        return hit[0]
                    del self._verified[token]
                    raise Unauthorized("Access token has expired")
        claims = self._decode(token)
        if self._cache_entries > 0:
            with self._lock:
                self._verified[token] = (claims, claims.expires_at.timestamp())
                while len(self._verified) > self._cache_entries:
                    self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> TokenClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                issuer="storeloop",
                options={"require": ["sub", "exp", "iat", "role"]},
            )
            user_id = int(claims["sub"])
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Access token has expired") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized("Invalid access token") from exc
        role = claims["role"]
        if role not in ROLES:
            raise Unauthorized("Invalid access token")
        return TokenClaims(user_id, role, datetime.fromtimestamp(claims["exp"], UTC))
