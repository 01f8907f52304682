"""Random identifiers from a buffer of the kernel's random bytes, not a system call each.

Why: ``secrets.token_hex`` and ``uuid.uuid4`` read ``os.urandom`` for every id, and CPython
releases the GIL around that read. A thread that gives the GIL away mid-request must then wait
to get it back, up to the 5 ms switch interval when another thread of the worker is busy. The
checkout made a handful of ids per order, on the event loop (the order id) and in the batch
thread (intents, webhook events, labels, emails, event-log records), and each was a chance to
lose the GIL. Here the bytes still come from ``os.urandom`` (the same quality as ``secrets``),
read 4 KiB at a time under a lock, so ids stay unguessable and about 200 of them cost one read.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid

_CHUNK = 4096
_lock = threading.Lock()
_buffer = b""
_offset = 0
_pid = 0


def random_bytes(n: int) -> bytes:
    """``n`` bytes from the kernel's random source, as ``os.urandom(n)`` would give."""
    global _buffer, _offset, _pid
    if n > _CHUNK:
        return os.urandom(n)
    with _lock:
        # A forked child must not hand out the bytes its parent has handed out too.
        if _offset + n > len(_buffer) or _pid != os.getpid():
            _buffer, _offset, _pid = os.urandom(_CHUNK), 0, os.getpid()
        start = _offset
        _offset += n
        return _buffer[start : start + n]


def token_hex(nbytes: int) -> str:
    """Like :func:`secrets.token_hex`: ``2 * nbytes`` hex digits."""
    return random_bytes(nbytes).hex()


def uuid4() -> uuid.UUID:
    """Like :func:`uuid.uuid4` (version and variant bits set)."""
    return uuid.UUID(bytes=random_bytes(16), version=4)


#: Request and search ids: a random per-process prefix plus a counter, so making one needs no
#: random bytes at all (a request id names a request in logs; it is not a secret).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A request id unique in this process and, through its random prefix, across processes."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
