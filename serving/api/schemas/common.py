"""Types shared by every schema: database ids and money bounded to what the columns hold.

Bounding ids at the edge turns an absurd id into a 422 (or a 404) instead of an overflow deep in
the database driver. Money and quantities are strict integers: ``"2"`` and ``true`` are refused
rather than coerced, so what a client meant is never guessed. Free text refuses NUL characters
on every database alike: PostgreSQL cannot store them and SQLite would keep them silently.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, Field

MAX_DB_INT = 2**31 - 1

DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
PathId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
MoneyMinor = Annotated[int, Field(strict=True, ge=0, le=2_000_000_000)]
#: Units of one product on a cart or order line (the checkout also caps the merged total).
LineQuantity = Annotated[int, Field(strict=True, ge=1, le=1000)]
StrictId = Annotated[int, Field(strict=True, ge=1, le=MAX_DB_INT)]
NUL_MESSAGE = "Text may not contain NUL characters (U+0000)"


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


#: Free text from a client (names, addresses, titles, notes).
Text = Annotated[str, AfterValidator(refuse_nul)]
