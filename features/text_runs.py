"""Letter and digit runs of a token: how model numbers and glued sizes are compared.

Queries and titles write the same thing glued or apart (``30x80`` / ``30 in. x 80 in.``,
``lvv6014er`` / ``LVV6014ER``, ``18volt`` / ``18-Volt``). Query planning splits a mixed word
into its runs; the ranker's title features split title tokens the same way, so a glued model
number in a title covers the query's runs instead of matching none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_RUNS = re.compile(r"\d+|[^\W\d_]+")


def runs(raw: str) -> list[str]:
    """Letter and digit runs of a word: ``30x80`` -> 30, x, 80; plain words stay whole."""
    parts = _RUNS.findall(raw)
    return parts if len(parts) > 1 else [raw]


def split_runs(tokens: Iterable[str]) -> tuple[str, ...]:
    """Tokens with every mixed letter/digit token replaced by its runs, in order."""
    out: list[str] = []
    for token in tokens:
        if token.isalpha() or token.isdigit():
            out.append(token)
        else:
            out.extend(runs(token))
    return tuple(out)
