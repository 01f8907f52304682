"""Errors raised by the search package.

They subclass ``ValueError`` so an API layer can map every bad-input case to a 4xx response with
one ``except`` clause, while corrupt indexes stay distinct (they are a server-side problem).
"""

from __future__ import annotations


class QueryError(ValueError):
    """The user's request cannot be served as given (too long, bad filter, bad cursor)."""


class QueryTooLongError(QueryError):
    """The query text exceeds the accepted length; callers should answer 400/413."""


class IndexCorruptError(RuntimeError):
    """An index directory does not match its manifest; it must never be served."""


class BackendUnavailableError(RuntimeError):
    """An optional backend library is missing; the message says how to install it."""
