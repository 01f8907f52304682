"""``SearchService``: the object the shop holds, serving one index version at a time.

Swapping is a single reference assignment after the new version is fully opened and verified,
so a request either uses the old backend or the new one — never a half-loaded mix. Requests that
started on the old backend finish on it (they hold their own reference).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from models.search.api import LiveDataProvider, SearchRequest, SearchResponse
from models.search.documents import ProductDocument
from models.search.index_store import IndexStore, verify, version_lock, write_manifest
from models.search.retrieval import TEXT_FIELDS
from models.search.tantivy_backend import TantivyBackend

BackendFactory = Callable[[Path], TantivyBackend]


class SearchService:
    """Holds the current backend of an ``IndexStore`` and swaps versions atomically."""

    def __init__(
        self,
        store: IndexStore,
        factory: BackendFactory = TantivyBackend,
        live_data: LiveDataProvider | None = None,
        open_current: bool = True,
    ) -> None:
        self.store = store
        self.factory = factory
        self.live_data = live_data
        self._lock = threading.Lock()
        self._backend: TantivyBackend | None = None
        self.version: str | None = None
        current = store.current() if open_current else None
        if current:
            self.load(current)

    @property
    def backend(self) -> TantivyBackend:
        """The backend serving right now (raise if nothing was ever published)."""
        backend = self._backend
        if backend is None:
            raise RuntimeError("no index version is published yet")
        return backend

    def build(self, documents: Iterable[ProductDocument], publish: bool = True) -> str:
        """Build a new version from documents, write its manifest, optionally publish + swap."""
        directory = self.store.new_version_dir()
        backend = self.factory(directory / "index")
        backend.build(documents)
        write_manifest(
            directory, doc_count=backend.num_docs, fields=list(TEXT_FIELDS), backend="tantivy"
        )
        if publish:
            self.store.publish(directory.name)
            self.load(directory.name)
        return directory.name

    def load(self, version: str) -> None:
        """Verify and open ``version`` fully, then make it current in one assignment."""
        directory = self.store.path(version)
        # Verify and open under the version's shared lock: a leader editing it in place (the
        # catalog sync, another process) waits, so the files opened are the ones verified.
        with version_lock(directory, exclusive=False):
            verify(directory, lock=False)
            backend = self.factory(directory / "index")
        backend.set_live_data(self.live_data)
        with self._lock:
            self._backend, self.version = backend, version

    def swap_to_current(self) -> None:
        """Follow the store pointer (after another process published or rolled back)."""
        current = self.store.current()
        if current and current != self.version:
            self.load(current)

    def search(self, request: SearchRequest) -> SearchResponse:
        """Search on whichever version is current when the call starts."""
        return self.backend.search(request)

    def search_cached(self, request: SearchRequest) -> SearchResponse | None:
        """The answer when the current version has it cached, else None (see the backend)."""
        return self.backend.search_cached(request)

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Autocomplete on the current version."""
        return self.backend.suggest(prefix, limit)

    def suggest_cached(self, prefix: str, limit: int = 8) -> list[str] | None:
        """Autocomplete when the current version answered it recently, else None."""
        return self.backend.suggest_cached(prefix, limit)

    def update_documents(self, documents: Iterable[ProductDocument]) -> None:
        """Apply catalog text changes to the served version and re-checksum it."""
        with self._lock, self._editing():
            backend = self.backend
            backend.update_documents(documents)
            self._refresh_manifest(backend)

    def delete_documents(self, product_ids: Iterable[str]) -> None:
        """Remove products from the served version and re-checksum it."""
        with self._lock, self._editing():
            backend = self.backend
            backend.delete_documents(product_ids)
            self._refresh_manifest(backend)

    def _editing(self) -> contextlib.AbstractContextManager[None]:
        """The served version's exclusive lock: readers never see files and manifest disagree."""
        if not self.version:
            return contextlib.nullcontext()
        return version_lock(self.store.path(self.version), exclusive=True)

    def _refresh_manifest(self, backend: TantivyBackend) -> None:
        if self.version:
            write_manifest(
                self.store.path(self.version),
                doc_count=backend.num_docs,
                fields=list(TEXT_FIELDS),
                backend="tantivy",
                updated=True,
            )
