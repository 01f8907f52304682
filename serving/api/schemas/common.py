"""Types shared by every schema: database ids and money bounded to what the columns hold.

Bounding ids at the edge turns an absurd id into a 422 (or a 404) instead of an overflow deep in
the database driver.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

MAX_DB_INT = 2**31 - 1

DbId = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
PathId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
MoneyMinor = Annotated[int, Field(ge=0, le=2_000_000_000)]
Quantity = Annotated[int, Field(ge=1, le=10_000)]
