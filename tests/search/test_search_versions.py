"""Index versions: manifests, atomic swaps, rollback, corrupt indexes refused, live updates."""

from __future__ import annotations

import threading

import pytest
from search_catalog import CATALOG

from models.search.api import SearchRequest
from models.search.documents import ProductDocument
from models.search.errors import IndexCorruptError
from models.search.index_store import IndexStore, verify
from models.search.service import SearchService


def titles(service: SearchService, query: str) -> list[str]:
    return [h.title for h in service.search(SearchRequest(query=query)).hits]


def test_build_publish_swap_and_rollback(tmp_path):
    store = IndexStore(tmp_path)
    service = SearchService(store)
    v1 = service.build(CATALOG[:5])
    manifest = verify(store.path(v1))
    assert manifest["doc_count"] == 5 and "title" in manifest["fields"]
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert titles(service, "laptop") == []
    v2 = service.build(CATALOG)
    assert store.current() == v2 and service.version == v2
    assert titles(service, "laptop")
    assert store.rollback() == v1
    service.swap_to_current()
    assert service.version == v1 and titles(service, "laptop") == []


def test_readers_never_see_a_half_swapped_index(tmp_path):
    store = IndexStore(tmp_path)
    service = SearchService(store)
    service.build(CATALOG[:5])
    errors: list[Exception] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                total = service.search(SearchRequest(query="")).total
                assert total in (5, len(CATALOG))
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(3):
        service.build(CATALOG)
        service.build(CATALOG[:5])
    stop.set()
    thread.join()
    assert errors == []


def test_corrupt_index_is_refused(tmp_path):
    store = IndexStore(tmp_path)
    service = SearchService(store)
    version = service.build(CATALOG)
    victim = next(p for p in store.path(version).rglob("*.idx"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptError):
        SearchService(store)
    with pytest.raises(IndexCorruptError):
        store.publish(version)


def test_live_updates_and_deletes_keep_manifest_valid(tmp_path):
    store = IndexStore(tmp_path)
    service = SearchService(store)
    service.build(CATALOG)
    service.update_documents(
        [ProductDocument(product_id="p6", title="Dell XPS 13 Ultrabook", brand="Dell", price=1)]
    )
    assert "Dell XPS 13 Ultrabook" in titles(service, "ultrabook")
    assert "Dell XPS 13 Laptop" not in titles(service, "laptop")
    service.delete_documents(["p5"])
    assert titles(service, "television") == []
    verify(store.path(service.version))
    reopened = SearchService(store).search(SearchRequest(query="ultrabook"))
    assert reopened.hits[0].title == "Dell XPS 13 Ultrabook"
