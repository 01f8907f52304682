"""A served index version edited in place while other threads and processes verify and open it.

Under load the whole-graph lakehouse test failed with ``IndexCorruptError: checksum mismatch
for index/.managed.json``: the catalog sync rewrote tantivy's files of the served version and
then its manifest, while another reader checksummed in between. Versions now carry a lock:
edits hold it exclusively, verify-and-open holds it shared (issue 18).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from models.search.errors import IndexCorruptError
from models.search.index_store import IndexStore, verify
from models.search.service import SearchService
from models.search.synthetic import generate_catalog

UPDATES = 40

READER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from models.search.errors import IndexCorruptError
    from models.search.index_store import IndexStore
    from models.search.service import SearchService

    root, done = Path(sys.argv[1]), Path(sys.argv[2])
    opened = refused = 0
    while not done.exists() or opened == 0:
        try:
            SearchService(IndexStore(root))
            opened += 1
        except IndexCorruptError as exc:
            refused += 1
            print("refused:", exc, flush=True)
    print(f"opened {opened} refused {refused}", flush=True)
    sys.exit(1 if refused else 0)
    """
)


def test_in_place_edits_never_fail_concurrent_readers(tmp_path: Path):
    store = IndexStore(tmp_path / "search_index")
    docs = generate_catalog(300, seed=3)
    leader = SearchService(store, open_current=False)
    version = leader.build(docs)
    done = tmp_path / "done"
    process = subprocess.Popen(
        [sys.executable, "-c", READER, str(store.root), str(done)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    errors: list[str] = []
    opens = [0, 0]

    def read(slot: int) -> None:
        while not done.exists() or opens[slot] == 0:
            try:
                SearchService(store)
                verify(store.path(version))
                opens[slot] += 1
            except IndexCorruptError as exc:
                errors.append(str(exc))

    readers = [threading.Thread(target=read, args=(i,)) for i in range(2)]
    for thread in readers:
        thread.start()
    try:
        for i in range(UPDATES):
            changed = docs[(i * 5) % 250 : (i * 5) % 250 + 5]
            leader.update_documents(changed)
            if i % 10 == 9:
                leader.delete_documents([docs[i].product_id])
    finally:
        done.touch()
        for thread in readers:
            thread.join()
        output, _ = process.communicate(timeout=600)
    assert errors == [], errors[:3]
    assert process.returncode == 0, output[-2000:]
    assert all(opens)
    assert verify(store.path(version))["updated"] is True


def test_two_builds_in_the_same_second_get_their_own_folders(tmp_path: Path):
    store = IndexStore(tmp_path / "search_index")
    folders: list[Path] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def claim() -> None:
        start.wait()  # all at once: the check-then-mkdir window is hit in (nearly) every run
        for _ in range(40):
            try:
                folder = store.new_version_dir()
            except OSError as exc:  # before: FileExistsError from a folder claimed meanwhile
                with lock:
                    failures.append(exc)
                return
            with lock:
                folders.append(folder)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(set(folders)) == len(folders) == 320
