"""Builders for a small but complete shop: orders written through the shop's tables and a
clickstream written as closed segments in the ``features.events`` format.

Checkout routes are another engineer's work in progress, so orders go straight into the
tables the migration created; events are written as the event log would close them, plus the
faults the lake must survive (a duplicated event id, a garbage line, a torn tail).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, insert

from features.events import FIELDS, format_ts
from features.rec_ids import RecIdVerifier
from serving.db.tables.orders import Order, OrderLine
from serving.db.tables.payments import Payment
from serving.db.tables.pricing import OrderCharge, Promotion, PromotionRedemption
from serving.db.tables.shipping import Shipment
from serving.services.pricing.money import contained_tax


@dataclass
class ShopFacts:
    """What the builder wrote, so tests can compare the warehouse with it."""

    orders: int = 0
    lines: int = 0
    total_minor: int = 0
    lines_total_minor: int = 0
    events_written: int = 0
    unique_events: int = 0
    bad_lines: int = 0
    searches: int = 0
    rec_impressions: int = 0
    segment_paths: list[Path] = field(default_factory=list)


def insert_orders(
    engine: Engine, user_ids: list[int], products: list[dict[str, Any]], when: datetime
) -> ShopFacts:
    """Three orders per user, one refunded, with payment and shipment.

    Only terminal states are used: the live shop's recovery thread moves ``paid`` orders and
    parcels along, which would change the source between two runs of an idempotency test.
    """
    facts = ShopFacts()
    orders, lines, payments, shipments, charges = [], [], [], [], []
    statuses = ("delivered", "delivered", "refunded")
    n = 0
    for user in user_ids:
        for k, status in enumerate(statuses):
            n += 1
            order_id = f"ord_{n:06d}"
            chosen = products[(n + k) % len(products) :][:2] or products[:2]
            subtotal = 0
            for q, p in enumerate(chosen, 1):
                total = p["price_minor"] * q
                subtotal += total
                lines.append(
                    {
                        "order_id": order_id,
                        "product_id": p["id"],
                        "title": p["title"],
                        "quantity": q,
                        "unit_price_minor": p["price_minor"],
                        "line_total_minor": total,
                    }
                )
                facts.lines += 1
                facts.lines_total_minor += total
            stamp = when + timedelta(minutes=n)
            orders.append(
                {
                    "id": order_id,
                    "user_id": user,
                    "status": status,
                    "currency": "EUR",
                    "subtotal_minor": subtotal,
                    "shipping_minor": 499,
                    "total_minor": subtotal + 499,
                    "shipping_address": {"city": "Lyon"},
                    "payment_method": "pm_test",
                    "from_cart": True,
                    "reserved_until": stamp,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            # The figures fixed at checkout (serving/services/pricing): German VAT inside.
            charges.append(
                {
                    "order_id": order_id,
                    "country": "DE",
                    "shipping_speed": "standard",
                    "goods_minor": subtotal,
                    "discount_minor": 0,
                    "shipping_minor": 499,
                    "tax_minor": contained_tax(subtotal + 499, 190_000),
                    "tax_mode": "inclusive",
                    "tax_rate_ppm": 190_000,
                    "duty_minor": 0,
                    "total_minor": subtotal + 499,
                    "currency": "EUR",
                    "breakdown": {},
                    "created_at": stamp,
                }
            )
            facts.orders += 1
            facts.total_minor += subtotal + 499
            payments.append(
                {
                    "order_id": order_id,
                    "provider": "sim",
                    "idempotency_key": f"idem-{order_id}",
                    "intent_id": None,
                    "status": "refunded" if status == "refunded" else "succeeded",
                    "amount_minor": subtotal + 499,
                    "refunded_minor": subtotal + 499 if status == "refunded" else 0,
                    "currency": "EUR",
                    "brand": "visa",
                    "last4": "4242",
                    "decline_code": None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
            if status == "delivered":
                shipments.append(
                    {
                        "order_id": order_id,
                        "carrier": "simpost",
                        "tracking_number": f"TRK{n:08d}",
                        "status": "delivered",
                        "created_at": stamp,
                        "updated_at": stamp,
                    }
                )
    with engine.begin() as conn:
        conn.execute(insert(Order), orders)
        conn.execute(insert(OrderLine), lines)
        conn.execute(insert(Payment), payments)
        if shipments:
            conn.execute(insert(Shipment), shipments)
        conn.execute(insert(OrderCharge), charges)
        # One coupon, redeemed by the first order (a charged one).
        conn.execute(
            insert(Promotion),
            [
                {
                    "id": 1,
                    "code": "WELCOME",
                    "name": "Welcome",
                    "kind": "free_shipping",
                    "percent_bp": 0,
                    "amount_minor": 0,
                    "currency": "EUR",
                    "min_subtotal_minor": 0,
                    "uses": 1,
                    "active": True,
                    "created_at": when,
                    "updated_at": when,
                }
            ],
        )
        conn.execute(
            insert(PromotionRedemption),
            [
                {
                    "order_id": orders[0]["id"],
                    "promotion_id": 1,
                    "user_id": orders[0]["user_id"],
                    "code": "WELCOME",
                    "discount_minor": 499,
                    "status": "held",
                    "created_at": orders[0]["created_at"],
                    "updated_at": orders[0]["created_at"],
                }
            ],
        )
    return facts


def event(kind: str, ts: datetime, **fields: Any) -> dict[str, Any]:
    """A stored record the way the event log writes one."""
    record: dict[str, Any] = dict.fromkeys(FIELDS)
    record.update(fields)
    record["event_id"] = fields.get("event_id") or str(uuid.uuid4())
    record["type"] = kind
    record["source"] = fields.get("source", "client")
    record["client_ts"] = format_ts(ts)
    record["server_ts"] = format_ts(ts)
    return record


def write_segment(events_dir: Path, opened: datetime, lines: list[bytes], seq: int = 1) -> Path:
    """A closed segment named like the writer names them (UTC open time first)."""
    events_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{opened.astimezone(UTC):%Y%m%dT%H%M%SZ}-testhost-1-cafe{seq:04d}-{seq:06d}"
    path = events_dir / f"{stem}.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def clickstream(
    events_dir: Path,
    user_ids: list[int],
    product_ids: list[int],
    start: datetime,
    rec_ids: RecIdVerifier | None = None,
) -> ShopFacts:
    """Sessions with views, searches, clicks, carts and recommendations, plus three faults.

    With ``rec_ids`` (the shop's secret) every recommendation list has a signed rec id naming
    version ``v1`` or ``v2``; the first user's impressions *claim* ``v9`` in their props, which
    the warehouse must ignore."""
    facts = ShopFacts()
    records: list[dict[str, Any]] = []
    t = start
    for u, user in enumerate(user_ids):
        session = f"s{u}"
        anon = f"a{u}"
        # An anonymous visit, then 2 hours later a logged-in one (two sessions).
        records.append(event("page_view", t, session_id=anon, props={"path": "/"}))
        records.append(
            event(
                "product_view",
                t + timedelta(minutes=1),
                session_id=anon,
                product_id=str(product_ids[0]),
            )
        )
        t2 = t + timedelta(hours=2)
        shown = [str(p) for p in product_ids[:4]]
        sid = f"srch-{u}"
        results = shown if u % 2 else ",".join(shown)  # list and comma-text both accepted
        records.append(
            event(
                "search",
                t2,
                user_id=str(user),
                session_id=session,
                search_id=sid,
                query="Headphones",
                props={"results": results, "total": len(shown)},
            )
        )
        records.append(
            event(
                "search_click",
                t2 + timedelta(seconds=20),
                user_id=str(user),
                session_id=session,
                search_id=sid,
                product_id=shown[1],
                position=1,
            )
        )
        records.append(
            event(
                "product_view",
                t2 + timedelta(seconds=25),
                user_id=str(user),
                session_id=session,
                product_id=shown[1],
            )
        )
        records.append(
            event(
                "add_to_cart",
                t2 + timedelta(minutes=2),
                user_id=str(user),
                session_id=session,
                product_id=shown[1],
                search_id=sid,
            )
        )
        records.append(
            event(
                "checkout_start", t2 + timedelta(minutes=3), user_id=str(user), session_id=session
            )
        )
        records.append(
            event(
                "search",
                t2 + timedelta(minutes=4),
                user_id=str(user),
                session_id=session,
                search_id=f"zero-{u}",
                query="xyzzy",
                props={"results": "", "total": 0},
            )
        )
        served = f"v{1 + u % 2}"
        rec = rec_ids.sign("home", served) if rec_ids is not None else f"rec-{u}"
        claimed = "v9" if u == 0 and rec_ids is not None else served
        for pos, pid in enumerate(product_ids[:3]):
            records.append(
                event(
                    "rec_impression",
                    t2 + timedelta(minutes=5),
                    user_id=str(user),
                    session_id=session,
                    rec_id=rec,
                    product_id=str(pid),
                    position=pos,
                    props={"model_version": claimed, "model": "als"},
                )
            )
        records.append(
            event(
                "rec_click",
                t2 + timedelta(minutes=6),
                user_id=str(user),
                session_id=session,
                rec_id=rec,
                product_id=str(product_ids[0]),
                position=0,
            )
        )
        facts.searches += 2
        facts.rec_impressions += 3
        t += timedelta(minutes=10)
    lines = [orjson.dumps(r) + b"\n" for r in records]
    facts.unique_events = len(records)
    lines.append(lines[0])  # a client retry: same event id again
    lines.append(b"{this is not json}\n")
    half = len(records) // 2
    first = write_segment(events_dir, start, lines[:half], seq=1)
    rest = lines[half:] + [b'{"event_id": "torn", "type": "page_vi']  # torn tail
    second = write_segment(events_dir, start + timedelta(minutes=1), rest, seq=2)
    facts.events_written = len(records) + 1
    facts.bad_lines = 2
    facts.segment_paths = [first, second]
    return facts
