"""Buffered random ids (serving/core/ids.py) are as unique and unguessable as ``secrets``'."""

from __future__ import annotations

import os
import threading

from serving.core import ids


def test_ids_are_unique_across_threads_and_refills():
    seen: list[str] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [ids.token_hex(10) for _ in range(3000)]  # several 4 KiB refills per thread
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 24_000
    assert len(set(seen)) == len(seen)
    assert all(len(token) == 20 and int(token, 16) >= 0 for token in seen)


def test_uuid4_has_the_version_and_variant_bits():
    values = [ids.uuid4() for _ in range(500)]
    assert {u.version for u in values} == {4}
    assert {u.variant for u in values} == {"specified in RFC 4122"}
    assert len(set(values)) == 500


def test_a_forked_child_does_not_repeat_its_parents_next_ids():
    ids.token_hex(1)  # the parent holds a partly used buffer
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, ids.token_hex(16).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = ids.token_hex(16)
    assert len(child) == 32
    assert child != parent
