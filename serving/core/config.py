"""Settings for the serving process, read once from the environment.

Standard names (``DATABASE_URL``, ``REDIS_URL``, ``ELASTICSEARCH_URL``, ``DATA_DIR``,
``JWT_SECRET``, ``SMTP_URL``) are read as they are, everything else with a ``STORELOOP_``
prefix. Everything lives under ``DATA_DIR`` by default so that ``rm -rf data`` is a clean reset.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url


def _std(name: str) -> AliasChoices:
    return AliasChoices(name, f"STORELOOP_{name}")


class Settings(BaseSettings):
    """One settings object per process; tests build their own with keyword arguments."""

    model_config = SettingsConfigDict(
        env_prefix="STORELOOP_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(Path("data"), validation_alias=_std("DATA_DIR"))
    database_url: str | None = Field(None, validation_alias=_std("DATABASE_URL"))
    redis_url: str | None = Field(None, validation_alias=_std("REDIS_URL"))
    elasticsearch_url: str | None = Field(None, validation_alias=_std("ELASTICSEARCH_URL"))
    smtp_url: str | None = Field(None, validation_alias=_std("SMTP_URL"))
    jwt_secret_value: str | None = Field(None, validation_alias=_std("JWT_SECRET"))

    environment: str = "dev"
    # Where operators find the Dagster UI; the ops page reads recent runs from it.
    dagster_url: str = "http://127.0.0.1:3000"
    log_level: str = "info"
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = 30
    # Verified access tokens remembered per process (core/security.py); 0 turns it off.
    auth_token_cache_entries: int = Field(default=10_000, ge=0)
    # A signed-in caller's user row (active flag, role) is reused for this long per process
    # (services/caller_cache.py; docs/security.md). This process's own writes to the users
    # table drop it at once; another process's take effect within this many seconds. 0 turns
    # it off (every request reads the row).
    auth_user_cache_seconds: float = Field(default=2.0, ge=0, le=60)
    auth_user_cache_entries: int = Field(default=10_000, ge=0)
    session_cookie: str = "sl_session"

    # Bodies and batches are bounded so one client cannot exhaust memory.
    max_body_bytes: int = 1_000_000
    max_page_size: int = 100
    event_batch_max_count: int = 500
    event_batch_max_bytes: int = 1_000_000
    event_segment_max_bytes: int = 64 * 1024 * 1024
    event_segment_max_seconds: float = 300.0

    # Token bucket per client; shared through Redis when REDIS_URL is set.
    rate_limit_enabled: bool = True
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    login_attempts_per_minute: int = 10
    # Reviews per account (services/review_limit.py): a bucket of this many, refilled per hour;
    # shared through Redis when REDIS_URL is set. 0 turns it off.
    review_burst: int = 10
    reviews_per_hour: float = 10.0

    # Simulation mode lets the synthetic shoppers set the clock; never on in production.
    simulation_mode: bool = False

    reservation_ttl_seconds: int = 900
    # Product pages and listings are served from memory for this long (0 turns it off).
    read_cache_seconds: float = 1.0
    read_cache_entries: int = 50_000

    # Checkout (docs/checkout.md). A saga step older than this is presumed dead and recovered.
    checkout_saga_timeout_seconds: float = 30.0
    # Checkouts one worker runs at once; the rest wait their turn in the event loop. A saga is
    # short and mostly holds the GIL or the database's write lock, so more at once only adds
    # threads fighting over both: the lock holder then waits for the GIL behind requests that
    # are themselves waiting for the lock, and throughput collapses under a burst.
    # Unset: 2 on SQLite (one writer at a time anyway; 2 so that one slow payment does not
    # stall the rest), 8 on PostgreSQL (row locks only).
    checkout_concurrency: int | None = Field(default=None, ge=1, le=256)
    # Group commit (serving/services/checkout_batch.py): orders that queue up while a batch
    # runs go through the saga together, with N-row statements and one transaction per step.
    # Off: every order runs the per-order saga in the threadpool.
    checkout_batching: bool = True
    checkout_batch_max: int = Field(default=64, ge=1, le=1000)
    # Batches in flight at once per worker. More than one only overlaps waiting (PostgreSQL
    # round trips); on the 2-core benchmark machine a second one did not help either database.
    checkout_batch_threads: int = Field(default=1, ge=1, le=16)
    # The usual POST /api/v1/orders goes straight to the batch without FastAPI's routing and
    # dependency solving (serving/middleware/checkout_fast_path.py); off: always the route.
    checkout_fast_path: bool = True
    # FastAPI's own OpenTelemetry spans, metrics and logs for every request, once a provider is
    # configured (OTEL_* environment, or the opentelemetry SDK). Off, the app skips even the
    # per-request check for a provider, which was 2.5–5% of the event loop at 300 orders/s.
    otel_enabled: bool = False
    # PostgreSQL: whether a commit waits for its WAL to reach the disk. Unset, the server's
    # own setting holds (``on`` by default). ``off`` gives the guarantee SQLite has here in
    # WAL mode with synchronous=NORMAL: a crash of the machine (or of PostgreSQL) may undo
    # the last fraction of a second of commits, always as a whole suffix of them, never a
    # half-made transaction, and recovery then finishes or compensates the orders it finds.
    # On a disk whose fsync stalls, ``on`` puts every stall into the checkout's latency
    # (docs/checkout.md, "Commit durability"). Keep ``on`` with a payment provider outside
    # this database: an order lost after its charge would leave a charge without an order.
    pg_synchronous_commit: Literal["on", "off", "local", "remote_write", "remote_apply"] | None = (
        None
    )
    # SQLite: seconds between the background WAL checkpoints (serving/db/checkpoint.py).
    sqlite_checkpoint_seconds: float = Field(default=1.0, gt=0, le=600)
    recovery_interval_seconds: float = 5.0
    idempotency_key_hours: int = 24
    shipping_flat_minor: int = 499
    free_shipping_from_minor: int = 5000
    # Simulated payment provider: webhook secret, delivery ("inprocess", "http", "off").
    payment_webhook_secret: str = "whsec_storeloop_simulated"
    payment_webhook_delivery: str = "inprocess"
    payment_webhook_url: str | None = None
    # In-process webhooks arrive this long after the provider answered, as real ones would;
    # the request has settled the order by then, so the event is a cheap confirmation.
    payment_webhook_delay_seconds: float = Field(default=0.5, ge=0, le=60)
    payment_provider_timeout_seconds: float = 2.0
    # Circuit breaker around the provider (payments/circuit_breaker.py): open after this many
    # consecutive timeouts/outages, probe again after the cool-down; checkouts meanwhile get 503.
    payment_breaker_failures: int = 5
    payment_breaker_reset_seconds: float = 30.0
    # Simulated carrier: how long a parcel waits before each tracking step.
    carrier_in_transit_after_seconds: float = 3600.0
    carrier_delivered_after_seconds: float = 86400.0
    # Outbox worker: polling, lease on a message being sent, retry backoff.
    outbox_poll_seconds: float = 1.0
    outbox_lease_seconds: float = 30.0
    outbox_max_attempts: int = 10
    mail_from: str = "shop@storeloop.dev"
    # Comma-separated fault-injection hooks; honoured only in tests and simulation mode.
    test_hooks: str = ""

    # Search serving (docs/api.md). Index versions live in DATA_DIR/registry/<subdir>, the
    # same folder the pipelines' ``search_index`` asset publishes to.
    search_index_subdir: str = "search_index"
    search_ranker_subdir: str = "search_ranker"
    # Per-query result cache (retrieval, rerank, facets; price, stock and archived state are
    # joined per request anyway): entries and seconds; 0 disables it. While the index is
    # unchanged an answer is kept up to 10 min; after a catalog sync pass, answers computed
    # before it are kept for at most search_cache_seconds, so results lag catalog edits by
    # at most catalog_sync_seconds + search_cache_seconds (40 s by default).
    search_cache_entries: int = Field(default=4096, ge=0)
    search_cache_seconds: float = Field(default=30.0, ge=0)
    elasticsearch_index: str = "storeloop-products"
    # Build a first index from the database at start-up when none is published yet.
    search_build_on_start: bool = True
    search_reload_seconds: float = 3.0
    # Price, stock and archived state joined into results are at most this old.
    live_data_seconds: float = 1.0
    # Catalog sync pushes products changed since its watermark into the served index.
    catalog_sync_seconds: float = 10.0
    # Units sold (search's popularity prior) of products whose only change is stock reach the
    # live index this often; an in-stock flip goes on the next sync pass (catalog_sync.py).
    catalog_popularity_seconds: float = Field(default=300.0, gt=0)
    # Recommendations serving: the registry artifact (kind "recs") whose serving pointer is
    # followed, how often it is polled, and the business rules applied after scoring.
    recs_model_name: str = "als"
    recs_reload_seconds: float = 2.0
    recs_catalog_refresh_seconds: float = 30.0
    recs_max_per_category: int | None = 4
    recs_max_per_brand: int | None = 3
    # Comma-separated category slugs whose products may be recommended again after purchase.
    recs_repeat_categories: str = ""
    recs_recent_items: int = 20
    recs_recent_owners: int = 100_000
    recs_popular_days: int = 90
    recs_trending_days: int = 7

    # Hardening (docs/operations.md, docs/security.md). Browser origins allowed to call the API
    # cross-origin, comma-separated; empty (the default) adds no CORS headers at all.
    cors_origins: str = ""
    # Load shedding: requests in flight per process above which new ones get 503 + Retry-After
    # (0 turns it off). Probes (/healthz, /readyz, /metrics) are never shed.
    max_in_flight_requests: int = 0
    shed_retry_after_seconds: int = 1
    # Fraud rules (serving/services/fraud.py): an order that trips one is held for review.
    fraud_enabled: bool = False  # opt-in: shared test cards and addresses would trip it
    fraud_window_minutes: int = 60
    fraud_max_orders_per_account: int = 5
    fraud_max_orders_per_card: int = 5
    fraud_max_accounts_per_address: int = 3
    fraud_amount_vs_history_factor: float = 10.0
    fraud_min_history_orders: int = 3
    fraud_amount_global_percentile: float = 0.995
    fraud_global_min_orders: int = 200
    fraud_absolute_max_minor: int = 1_000_000

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the driver SQLAlchemy should use."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'storeloop.db').resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if self.pg_synchronous_commit and url.startswith("postgresql"):
            url = with_server_option(url, "synchronous_commit", self.pg_synchronous_commit)
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.sqlalchemy_url.startswith("sqlite")

    @cached_property
    def jwt_secret(self) -> str:
        """The signing secret: from ``JWT_SECRET``, else generated once and kept in DATA_DIR.

        A hard-coded default would let anyone mint admin tokens, so there is none.
        """
        if self.jwt_secret_value:
            if len(self.jwt_secret_value) < 32:
                raise ValueError("JWT_SECRET must be at least 32 characters")
            return self.jwt_secret_value
        path = self.data_dir / "jwt_secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret)
        try:
            os.link(tmp, path)  # first writer wins when several workers start at once
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()

    def ensure_dirs(self) -> None:
        """Create DATA_DIR and its standard sub-folders."""
        for sub in ("", "events", "lake", "registry"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Settings from the environment (a fresh object; the app keeps its own)."""
    return Settings()


def with_server_option(url: str, name: str, value: str) -> str:
    """``url`` with ``-c name=value`` added to its libpq ``options`` (kept: any already there,
    such as a ``search_path``), so every connection starts with the setting and no round trip."""
    parsed = make_url(url)
    options = " ".join(filter(None, [parsed.query.get("options", ""), f"-c {name}={value}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
