"""Read what a signed recommendation id says: the surface and model version it was served for.

The shop mints every answer's ``rec_id`` as ``<nonce 16 hex><mac 16 hex>.<surface>.<version>``
(``serving``'s ``RecIds``): the MAC is HMAC-SHA256 over ``nonce.surface.version`` under
``sha256("storeloop rec id|" + signing secret)``, truncated to 16 hex digits. Impressions and
clicks echo the id back, so the warehouse can credit each event to the version that really
served it instead of trusting the ``model_version`` a client writes into ``props`` (anyone can
post events naming any version). An id that does not verify — made up, altered, minted under
another shop's secret, or an old unsigned one — names no version at all.

The secret is the shop's signing secret: ``JWT_SECRET`` (or ``STORELOOP_JWT_SECRET``) when set,
else the file the shop generated in ``DATA_DIR/jwt_secret``. This module only reads it; it
never creates one (a reader that invented a secret would verify nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

#: Surfaces a rec id may name (the shop maps anything else a client asks for to ``other``).
SURFACES = ("home", "product", "cart", "search", "other")
SECRET_ENV = ("JWT_SECRET", "STORELOOP_JWT_SECRET")  # the order the shop's settings read
SECRET_FILE = "jwt_secret"


@dataclass(frozen=True)
class ServedAs:
    """What one served list was: its surface and the model version that produced it."""

    surface: str
    version: str


class RecIdVerifier:
    """Checks a rec id's MAC and returns the surface and version it was minted with."""

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a rec id verifier needs the shop's signing secret")
        self._key = hashlib.sha256(f"storeloop rec id|{secret}".encode()).digest()

    def mac(self, nonce: str, surface: str, version: str) -> str:
        """The 16-hex-digit MAC of one (nonce, surface, version)."""
        message = f"{nonce}.{surface}.{version}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]

    def sign(self, surface: str, version: str, nonce: str | None = None) -> str:
        """A rec id in the shop's format (used by tests and tools that replay events)."""
        if surface not in SURFACES or "." in surface or not version:
            raise ValueError(f"cannot sign surface {surface!r} / version {version!r}")
        nonce = nonce if nonce is not None else secrets.token_hex(8)
        if len(nonce) != 16:
            raise ValueError("the nonce must be 16 hex digits")
        return f"{nonce}{self.mac(nonce, surface, version)}.{surface}.{version}"

    def parse(self, rec_id: object) -> ServedAs | None:
        """The surface and version, or None for an id this shop did not mint."""
        if not isinstance(rec_id, str):
            return None
        parts = rec_id.split(".", 2)
        if len(parts) != 3 or len(parts[0]) != 32 or parts[1] not in SURFACES or not parts[2]:
            return None
        nonce, mac = parts[0][:16], parts[0][16:]
        if not hmac.compare_digest(mac, self.mac(nonce, parts[1], parts[2])):
            return None
        return ServedAs(parts[1], parts[2])

    def version(self, rec_id: object) -> str | None:
        """The verified model version (None when the id does not verify)."""
        served = self.parse(rec_id)
        return None if served is None else served.version

    def surface(self, rec_id: object) -> str | None:
        """The verified surface (None when the id does not verify)."""
        served = self.parse(rec_id)
        return None if served is None else served.surface


def read_secret(data_dir: Path | str | None) -> str | None:
    """The shop's signing secret from the environment or ``DATA_DIR/jwt_secret``; None if
    neither exists (then no rec id verifies)."""
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value:
            return value
    if data_dir is None:
        return None
    path = Path(data_dir) / SECRET_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    return text or None
