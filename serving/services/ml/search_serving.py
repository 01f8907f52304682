"""Search as the API serves it: which index version answers, how it is built, swapped and fed.

``models.search`` knows how to build, open and query an index; this module decides *when*:

* at start-up it opens the published version (``DATA_DIR/registry/<search_index_subdir>``, the
  folder the pipelines' ``search_index`` asset publishes to), or, on a fresh shop, builds one
  from the database in a background thread so search works within seconds — until then
  requests get a plain title match from the database instead of an error;
* a poll thread follows the store's ``CURRENT`` pointer and swaps versions atomically
  (``SearchService.load`` opens and verifies fully before one reference assignment), and picks
  up a newly published learning-to-rank model, which is only used when its gate passed;
* one process per ``DATA_DIR`` (an ``flock`` decides) runs the catalog sync that writes into
  the served version; the others notice the rewritten manifest and reopen it;
* with ``ELASTICSEARCH_URL`` set, the same calls go to an Elasticsearch index instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from models.search.api import SearchRequest, SearchResponse
from models.search.documents import ProductDocument
from models.search.errors import IndexCorruptError
from models.search.index_store import MANIFEST, IndexStore, verify
from models.search.ltr import Ranker
from models.search.service import SearchService
from models.search.tantivy_backend import TantivyBackend
from serving.core.config import Settings
from serving.db.tables import Inventory, Product
from serving.services.ml.catalog_sync import CatalogSync, CatalogSyncLock, catalog_documents
from serving.services.ml.catalog_view import CategoryIndex, ProductInfoCache

log = logging.getLogger("storeloop.search")

BM25 = "bm25"
#: Ranker manifests must say the gate passed, else plain retrieval keeps serving.
GATE_KEY = "gate_passed"


class Engine_(Protocol):
    """The calls the API needs from whichever backend serves (tantivy service or ES)."""

    version: str | None

    def search(self, request: SearchRequest) -> SearchResponse: ...

    def search_cached(self, request: SearchRequest) -> SearchResponse | None: ...

    def suggest(self, prefix: str, limit: int = 8) -> list[str]: ...

    def suggest_cached(self, prefix: str, limit: int = 8) -> list[str] | None: ...

    def update_documents(self, documents: list[ProductDocument]) -> None: ...

    def delete_documents(self, product_ids: list[str]) -> None: ...


class ElasticsearchService:
    """Adapter giving the ES backend the ``SearchService`` surface (one live index, no files)."""

    def __init__(self, url: str, index: str, live_data: Callable[..., Any]) -> None:
        from models.search.es_backend import ElasticsearchBackend

        self.backend = ElasticsearchBackend(url, index=index)
        self.backend.set_live_data(live_data)
        self.version: str | None = None

    def has_documents(self) -> bool:
        client = self.backend.client
        if not client.indices.exists(index=self.backend.index):
            return False
        return int(client.count(index=self.backend.index)["count"]) > 0

    def build(self, documents: list[ProductDocument]) -> None:
        self.backend.build(documents)
        self.version = f"elasticsearch:{self.backend.index}"

    def search(self, request: SearchRequest) -> SearchResponse:
        return self.backend.search(request)

    def search_cached(self, request: SearchRequest) -> SearchResponse | None:
        return None  # every call is a network round trip: never inline on the event loop

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        return self.backend.suggest(prefix, limit)

    def suggest_cached(self, prefix: str, limit: int = 8) -> list[str] | None:
        return None

    def update_documents(self, documents: list[ProductDocument]) -> None:
        self.backend.update_documents(documents)

    def delete_documents(self, product_ids: list[str]) -> None:
        self.backend.delete_documents(product_ids)


@dataclass(frozen=True, slots=True)
class Served:
    """One consistent view for a request: the engine and the versions it reports."""

    engine: Engine_
    index_version: str | None
    ranker_version: str


class SearchServing:
    """Owns the served search engine, its lifecycle threads and the catalog sync."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        categories: CategoryIndex,
        products: ProductInfoCache,
    ) -> None:
        self.settings = settings
        self.db_engine = engine
        self.categories = categories
        self.products = products
        layout = settings.layout
        self.index_root = layout.search_index
        self.ranker_store = IndexStore(layout.search_ranker)
        self.store = IndexStore(self.index_root)
        self.ranker: Ranker | None = None
        self.ranker_version = BM25
        self._ranker_seen: str | None = None
        self._service: SearchService | ElasticsearchService | None = None
        self._ready = False
        self.state = "empty"  # empty → building → ready | failed
        self._write_lock = threading.Lock()
        self._manifest_mtime: int | None = None
        self.leader = False
        self._leader_lock = CatalogSyncLock(engine, self.index_root)
        self.sync = CatalogSync(
            engine,
            categories,
            self,
            settings.catalog_sync_seconds,
            popularity_seconds=settings.catalog_popularity_seconds,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.swaps = 0
        # Versions this process built from the database, and how much was synced into them:
        # the spelling vocabulary is only written by a full build, so a shop that grew from
        # an empty catalog gets a rebuild once sync has added a good share of its products.
        self._own_version: str | None = None
        self._own_docs = 0
        self._synced = 0
        self._rebuilding = False

    # ---------------------------------------------------------------- what requests see

    def request(self, *, in_stock: bool | None = None, **fields: Any) -> SearchRequest:
        """A ``SearchRequest`` with the shop's out-of-stock policy applied (settings)."""
        policy = self.settings.search_out_of_stock
        if policy == "hide" and in_stock is None:
            in_stock = True
        return SearchRequest(in_stock=in_stock, demote_out_of_stock=policy == "demote", **fields)

    def served(self) -> Served | None:
        """The engine to use for one request, or None while no index exists (use fallback)."""
        service = self._service
        if not self._ready or service is None:
            return None
        return Served(service, service.version, self.ranker_version)

    # ---------------------------------------------------------------- start and stop

    def start(self) -> None:
        """Open what is published, else build in the background; start poll and sync loops."""
        self.leader = self._take_leadership()
        if self.settings.elasticsearch_url:
            self._start_elasticsearch()
        else:
            self._start_tantivy()
        if self.leader:
            self.sync.start()

    def _start_tantivy(self) -> None:
        self._load_ranker()
        # Opening happens below, so a corrupt version is logged and replaced, not fatal.
        service = SearchService(
            self.store, self._backend_factory, self.products.live_state, open_current=False
        )
        self._service = service
        current = self.store.current()
        opened = False
        if current:
            try:
                service.load(current)
                self._remember_manifest()
                opened = True
            except (IndexCorruptError, OSError, ValueError) as exc:
                log.error("search index %s refused: %s", current, exc)
        if opened:
            self._ready, self.state = True, "ready"
            if self.leader:
                self.sync.start_from_now()
        elif self.settings.search_build_on_start and self.leader:
            self.state = "building"
            self._spawn("search-build", self._build_from_database)
        self._spawn("search-reload", self._reload_loop)

    def _start_elasticsearch(self) -> None:
        assert self.settings.elasticsearch_url
        service = ElasticsearchService(
            self.settings.elasticsearch_url,
            self.settings.elasticsearch_index,
            self.products.live_state,
        )
        self._service = service
        try:
            has_docs = service.has_documents()
        except Exception as exc:  # cluster down: serve the fallback and keep trying to build
            log.error("elasticsearch unavailable: %s", exc)
            has_docs = False
        if has_docs:
            service.version = f"elasticsearch:{service.backend.index}"
            self._ready, self.state = True, "ready"
            if self.leader:
                self.sync.start_from_now()
        elif self.leader:
            self.state = "building"
            self._spawn("search-build", self._build_from_database)

    def stop(self) -> None:
        self._stop.set()
        self.sync.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        self._leader_lock.release()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _take_leadership(self) -> bool:
        """One process per index builds and syncs; several writers would fight over files.

        With PostgreSQL the lock is asked of the database: a database that is down at start-up
        leaves this process a follower (it still serves what is published) instead of failing
        the start, so ``/readyz`` can say what is wrong.
        """
        try:
            return self._leader_lock.try_acquire()
        except SQLAlchemyError as exc:
            log.warning("catalog-sync lock not taken (database unreachable): %s", exc)
            return False

    # ---------------------------------------------------------------- building

    def _backend_factory(self, path: Path) -> TantivyBackend:
        return TantivyBackend(
            path,
            ranker=self.ranker,
            cache_entries=self.settings.search_cache_entries,
            cache_seconds=self.settings.search_cache_seconds,
        )

    def build_from_database(self, replace: bool = False) -> str | None:
        """Build and publish a version from the shop database; returns its name.

        Without ``replace``, a version published meanwhile (by the pipelines) wins.
        """
        with self.db_engine.connect() as conn:
            self.sync.start_from_now()  # changes during the build are pushed by the next pass
            docs, _, _ = catalog_documents(conn, self.categories)
        service = self._service
        if isinstance(service, ElasticsearchService):
            service.build(docs)
            self._ready, self.state = True, "ready"
            return service.version
        assert service is not None
        if self.store.current() and not replace:
            self._reload_if_changed()
            return self.store.current()
        with self._write_lock:
            version = service.build(docs)
            self._remember_manifest()
        self._own_version, self._own_docs, self._synced = version, len(docs), 0
        self._ready, self.state = True, "ready"
        log.info("search index %s built from the database (%d products)", version, len(docs))
        return version

    def _build_from_database(self) -> None:
        try:
            self.build_from_database()
        except Exception:
            self.state = "failed"
            log.exception("could not build the search index from the database")

    # ---------------------------------------------------------------- hot reload

    def _reload_loop(self) -> None:
        while not self._stop.wait(self.settings.search_reload_seconds):
            try:
                self._reload_if_changed()
                self._load_ranker()
            except Exception:
                log.exception("search reload check failed")

    def _differs(self, service: SearchService, current: str | None) -> bool:
        """Whether ``current`` (``CURRENT``'s version) is another than ``service`` serves (or,
        in a follower, the leader edited the served version in place)."""
        if not current:
            return False
        if current != service.version:
            return True
        return not self.leader and self._manifest_stamp(current) != self._manifest_mtime

    def _manifest_stamp(self, version: str) -> int | None:
        try:
            return os.stat(self.store.path(version) / MANIFEST).st_mtime_ns
        except OSError:
            return None

    def _remember_manifest(self) -> None:
        service = self._service
        if service is not None and service.version:
            self._manifest_mtime = self._manifest_stamp(service.version)

    def _reload_if_changed(self) -> bool:
        """Follow ``CURRENT`` (and, in followers, the leader's in-place edits); True if swapped."""
        service = self._service
        if not isinstance(service, SearchService):
            return False
        if not self._differs(service, self.store.current()):
            return False
        with self._write_lock:
            # Asked again under the lock: this process's own build publishes its version
            # before it serves it, so the check above can see a "new" version that is the one
            # being built. Loading it again rewound the catalog sync a day and re-pushed every
            # product stamped since (the whole catalog, after an import).
            current = self.store.current()
            if current is None or not self._differs(service, current):
                return False
            try:
                service.load(current)
            except (IndexCorruptError, OSError, ValueError) as exc:
                log.error("search index %s refused, keeping %s: %s", current, service.version, exc)
                return False
            self._remember_manifest()
        self._ready, self.state = True, "ready"
        self.swaps += 1
        if self.leader:
            # A version built from the warehouse may predate recent catalog edits.
            self.sync.rewind(timedelta(days=1))
        log.info("search now serves index %s", current)
        return True

    def _load_ranker(self) -> None:
        """Use the published ranker when its gate passed; otherwise keep plain retrieval."""
        current = self.ranker_store.current()
        if current == self._ranker_seen:
            return
        self._ranker_seen = current
        ranker, label = None, BM25
        if current:
            directory = self.ranker_store.path(current)
            try:
                verify(directory)
                candidate = Ranker.load(directory)
            except (IndexCorruptError, OSError, ValueError, KeyError) as exc:
                log.error("search ranker %s refused: %s", current, exc)
                return
            if candidate.metrics.get(GATE_KEY) is True:
                ranker, label = candidate, f"ltr:{current}"
            else:
                log.warning("search ranker %s did not pass its gate; not used", current)
        self.ranker = ranker
        service = self._service
        if isinstance(service, SearchService):
            with contextlib.suppress(RuntimeError):  # nothing opened yet: the factory uses it
                service.backend.ranker = ranker
        self.ranker_version = label

    # ---------------------------------------------------------------- catalog sync target

    def apply_changes(self, documents: list[ProductDocument], deleted: list[str]) -> bool:
        """Write catalog changes into the served version (the sync loop calls this)."""
        service = self._service
        if service is None or not self._ready:
            return False
        with self._write_lock:
            if documents:
                service.update_documents(documents)
            if deleted:
                service.delete_documents(deleted)
            self._remember_manifest()
        self._synced += len(documents)
        own = self._own_version is not None and self._own_version == service.version
        if own and not self._rebuilding and self._synced >= max(5, self._own_docs // 5):
            self._rebuilding = True
            self._spawn("search-rebuild", self._rebuild)
        return True

    def _rebuild(self) -> None:
        try:
            self.build_from_database(replace=True)
        except Exception:
            log.exception("search index rebuild from the database failed")
        finally:
            self._rebuilding = False

    # ---------------------------------------------------------------- fallback

    def categories_path(self, category_id: int) -> str:
        """Display path ("Electronics > Audio") of a category id, "" when unknown."""
        info = self.categories.by_id(category_id)
        return self.categories.display_path(info.path) if info else ""

    def fallback_search(self, text: str, limit: int, offset: int) -> tuple[list[int], int]:
        """Active products whose title contains the text (case-insensitive), while no index."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        cond = [Product.status == "active"]
        if escaped.strip():
            cond.append(func.lower(Product.title).like(f"%{escaped.lower()}%", escape="\\"))
        with self.db_engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(Product).where(*cond)) or 0
            ids = list(
                conn.scalars(
                    select(Product.id)
                    .join(Inventory, Inventory.product_id == Product.id)
                    .where(*cond)
                    .order_by(Product.rating_avg.desc(), Product.id)
                    .offset(offset)
                    .limit(limit)
                )
            )
        return ids, int(total)
