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

from features.layout import SEARCH_INDEX_SUBDIR, SEARCH_RANKER_SUBDIR, DataLayout


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
    # (services/shop/caller_cache.py; docs/security.md). This process's own writes to the users
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
    # Per-client clickstream quota per minute (services/infra/event_quota.py), on while the rate
    # limiter is: events and bytes per session id and per network address; 0 turns one off.
    event_quota_session_events_per_minute: int = Field(default=600, ge=0)
    event_quota_session_bytes_per_minute: int = Field(default=1_000_000, ge=0)
    event_quota_address_events_per_minute: int = Field(default=3000, ge=0)
    event_quota_address_bytes_per_minute: int = Field(default=4_000_000, ge=0)
    event_segment_max_bytes: int = 64 * 1024 * 1024
    event_segment_max_seconds: float = 300.0
    # Shared event stream (docs/operations.md): EVENTS_URL=nats://host:4222 appends accepted
    # events to a NATS JetStream stream; local segments then only with events_local_segments.
    events_url: str | None = Field(None, validation_alias=_std("EVENTS_URL"))
    events_stream: str = "storeloop_events"
    events_local_segments: bool = False
    events_publish_timeout_seconds: float = Field(default=5.0, gt=0)
    # Shared artifacts: the registry (models, search index, ranker) and the lake may live on a
    # path every host mounts (docs/operations.md); default DATA_DIR/registry and DATA_DIR/lake.
    registry_dir: Path | None = None
    lake_dir: Path | None = None

    # Token bucket per client; shared through Redis when REDIS_URL is set.
    rate_limit_enabled: bool = True
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    # Registration refuses passwords zxcvbn scores below this
    # (0-4; services/shop/password_policy.py).
    password_min_score: int = Field(default=3, ge=0, le=4)
    # Sign-in throttling (services/shop/login_throttle.py): failed logins free per account and
    # address pair before a back-off of base, 2×base, … up to max seconds applies to that pair
    # only (the owner at another address is never locked out); the pair is forgotten after
    # memory seconds without a failure. Per address, failures for any account leak away at
    # failures_per_address_per_minute and above it the address backs off too (0 turns it off).
    login_attempts_per_minute: int = Field(default=10, ge=1)
    login_backoff_base_seconds: float = Field(default=30.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)
    login_failure_memory_seconds: float = Field(default=900.0, gt=0)
    login_failures_per_address_per_minute: int = Field(default=20, ge=0)
    # Reviews per account (services/shop/review_limit.py): a bucket of this many, refilled per hour;
    # shared through Redis when REDIS_URL is set. 0 turns it off.
    review_burst: int = 10
    reviews_per_hour: float = 10.0

    # Simulation mode lets the synthetic shoppers set the clock; never on in production.
    simulation_mode: bool = False

    reservation_ttl_seconds: int = 900
    # Product pages and listings are served from memory for this long (0 turns it off).
    read_cache_seconds: float = 1.0
    read_cache_entries: int = 50_000

    # Checkout (docs/checkout.md). An order's merged quantity of one product, and its total in
    # minor units, may not exceed these (checkout refuses with 422).
    max_line_quantity: int = Field(default=1000, ge=1, le=1_000_000)
    max_order_total_minor: int = Field(default=100_000_000, ge=1, le=10**15)
    # A saga step older than this is presumed dead and recovered.
    checkout_saga_timeout_seconds: float = 30.0
    # Checkouts one worker runs at once; the rest wait their turn in the event loop. A saga is
    # short and mostly holds the GIL or the database's write lock, so more at once only adds
    # threads fighting over both: the lock holder then waits for the GIL behind requests that
    # are themselves waiting for the lock, and throughput collapses under a burst.
    # Unset: 2 on SQLite (one writer at a time anyway; 2 so that one slow payment does not
    # stall the rest), 8 on PostgreSQL (row locks only).
    checkout_concurrency: int | None = Field(default=None, ge=1, le=256)
    # Group commit (serving/services/checkout/batch.py): orders that queue up while a batch
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
    # The usual GET /api/v1/recommendations/users/{id} skips FastAPI's routing and dependency
    # solving likewise (serving/middleware/recs_fast_path.py); off: always the route.
    recs_fast_path: bool = True
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
    # Pricing (serving/services/pricing): the country parcels leave from (orders to another
    # country are cross-border and may owe customs duty) and the weight of a product without a
    # row in ``product_weights``. The flat rate and threshold above are the standard option
    # when no shipping rate is configured for an order's currency.
    shop_origin_country: str = Field(default="DE", pattern="^[A-Z]{2}$")
    default_item_weight_g: int = Field(default=500, gt=0, le=1_000_000)
    # Simulated payment provider: webhook secret (unset: generated per install into DATA_DIR,
    # refused in production; see ``payment_webhook_secret``), delivery ("inprocess", "http",
    # "off").
    payment_webhook_secret_value: str | None = Field(
        None, validation_alias="STORELOOP_PAYMENT_WEBHOOK_SECRET"
    )
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
    search_index_subdir: str = SEARCH_INDEX_SUBDIR
    search_ranker_subdir: str = SEARCH_RANKER_SUBDIR
    # Per-query result cache (retrieval, rerank, facets; price, stock and archived state are
    # joined per request anyway): entries and seconds; 0 disables it. While the index is
    # unchanged an answer is kept up to 10 min; after a catalog sync pass, answers computed
    # before it are kept for at most search_cache_seconds, so results lag catalog edits by
    # at most catalog_sync_seconds + search_cache_seconds (40 s by default).
    search_cache_entries: int = Field(default=4096, ge=0)
    search_cache_seconds: float = Field(default=30.0, ge=0)
    elasticsearch_index: str = "storeloop-products"
    # Products out of stock in relevance order and browsing: "demote" (after those in stock,
    # still listed and counted), "hide" (as if in_stock=true were asked unless the request
    # says otherwise) or "keep" (rank them like any other).
    search_out_of_stock: Literal["demote", "hide", "keep"] = "demote"
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
    # Consumable categories and re-purchase intervals are (re)learned from purchases this often.
    recs_repeat_learn_seconds: float = Field(default=60.0, gt=0)
    # A/B test: this share of shoppers (by a hash of their user or session id) are served this
    # published version of recs_model_name instead of the serving one; empty: no test.
    recs_ab_version: str = ""
    recs_ab_share: float = Field(default=0.5, ge=0.0, le=1.0)
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
    # Fraud rules (services/fraud.py, checkout/holds.py): an order that trips one is held.
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
        url = self.database_url or f"sqlite:///{self.layout.database.resolve()}"
        if url.startswith("postgres://"):
            url = "postgresql://" + url[len("postgres://") :]
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if self.pg_synchronous_commit and url.startswith("postgresql"):
            url = with_server_option(url, "synchronous_commit", self.pg_synchronous_commit)
        return url

    @property
    def layout(self) -> DataLayout:
        """Every path under ``DATA_DIR`` (features/layout.py, shared with the pipelines)."""
        return DataLayout(
            self.data_dir,
            self.lake_dir,
            self.registry_dir,
            self.search_index_subdir,
            self.search_ranker_subdir,
        )

    @property
    def registry_path(self) -> Path:
        """Where versioned models and search indexes live (shared by hosts when configured)."""
        return self.layout.registry

    @property
    def lake_path(self) -> Path:
        """Root of the Parquet lake the pipelines write."""
        return self.layout.lake

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
        return install_secret(self.data_dir / "jwt_secret", "")

    @cached_property
    def payment_webhook_secret(self) -> str:
        """The webhook signing secret shared with the (simulated) payment provider.

        From ``STORELOOP_PAYMENT_WEBHOOK_SECRET``, else generated once per install into
        ``DATA_DIR/payment_webhook_secret``: a default shipped in the code would let anyone
        sign events. In production it must be set explicitly (it is the real provider's).
        """
        value = self.payment_webhook_secret_value
        if value:
            if len(value) < 32:
                raise ValueError("STORELOOP_PAYMENT_WEBHOOK_SECRET must be at least 32 characters")
            return value
        if self.environment == "production":
            raise ValueError(
                "STORELOOP_PAYMENT_WEBHOOK_SECRET must be set in production "
                "(the payment provider's webhook signing secret)"
            )
        return install_secret(self.data_dir / "payment_webhook_secret", "whsec_")

    def ensure_dirs(self) -> None:
        """Create DATA_DIR and its standard sub-folders."""
        layout = self.layout
        for path in (layout.root, layout.events, layout.lake, layout.registry):
            path.mkdir(parents=True, exist_ok=True)


def install_secret(path: Path, prefix: str) -> str:
    """The secret kept at ``path``, generated (owner-only) if there is none yet.

    Several workers may start at once: the first to link its file wins, the rest read it."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = prefix + secrets.token_urlsafe(48)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def get_settings() -> Settings:
    """Settings from the environment (a fresh object; the app keeps its own)."""
    return Settings()


def with_server_option(url: str, name: str, value: str) -> str:
    """``url`` with ``-c name=value`` added to its libpq ``options`` (kept: any already there,
    such as a ``search_path``), so every connection starts with the setting and no round trip."""
    parsed = make_url(url)
    options = " ".join(filter(None, [parsed.query.get("options", ""), f"-c {name}={value}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)
