"""Coupons and automatic promotions: finding the ones that apply, and holding their uses.

**Usage limits under concurrency.** A checkout takes a use with one conditional statement per
counter, inside the transaction that writes the order:

* global: ``UPDATE promotions SET uses = uses + 1 WHERE id = :id AND (max_uses IS NULL OR
  uses < max_uses)``, and the row count says whether it got one. On PostgreSQL the row lock
  makes a second checkout wait and re-check the condition on the committed row; on SQLite the
  write lock serialises the transactions. Either way no interleaving can pass ``max_uses``,
  and the table's ``CHECK (uses <= max_uses)`` would fail the transaction if one ever did.
* per customer: ``INSERT … ON CONFLICT (promotion_id, user_id) DO UPDATE SET uses = uses + 1
  WHERE uses < :max``, atomic in the same way.

A held use is a ``promotion_redemptions`` row with ``status = 'held'``; the order's
compensation releases it (``held → released`` by a conditional update, so a second
compensation gives nothing back twice) and gives both counts back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from serving.core.errors import Conflict, NotFound
from serving.db.bulk import Bound, BulkStatement
from serving.db.tables import Category, Promotion, PromotionRedemption, PromotionUsage

from .quote import PricingError, Quote

HELD = "held"
RELEASED = "released"


def normalise_code(code: str) -> str:
    return code.strip().upper()


class CouponExhausted(Conflict):
    """The coupon's uses (all of them, or this customer's) are taken: 409, like a sold-out
    product, since another order holds what this one wanted."""

    def __init__(self, code: str | None, *, per_customer: bool) -> None:
        who = "this customer's uses of" if per_customer else "every use of"
        super().__init__(
            f"{who} coupon {code} {'are' if per_customer else 'is'} taken",
            code="coupon_customer_limit" if per_customer else "coupon_exhausted",
        )


_PROMOTIONS = Promotion.__table__
_USAGE = PromotionUsage.__table__
_REDEMPTIONS = PromotionRedemption.__table__


def _dialect(db: Any) -> str:
    """Dialect name of a Session or a Connection (the checkout's batch passes the latter)."""
    bind = db.get_bind() if isinstance(db, Session) else db
    return bind.dialect.name


def _in_window_core(now: datetime):
    t = _PROMOTIONS
    return and_(
        t.c.active.is_(True),
        or_(t.c.starts_at.is_(None), t.c.starts_at <= now),
        or_(t.c.ends_at.is_(None), t.c.ends_at > now),
    )


def _take_customer_use(db: Any, promotion_id: int, limit: int, user_id: int) -> bool:
    # RETURNING answers whether a use was taken: psycopg reports a row count of -1 for a
    # compiled INSERT.
    insert_ = pg_insert if _dialect(db) == "postgresql" else sqlite_insert
    statement = (
        insert_(_USAGE)
        .values(promotion_id=promotion_id, user_id=user_id, uses=1)
        .on_conflict_do_update(
            index_elements=["promotion_id", "user_id"],
            set_={"uses": _USAGE.c.uses + 1},
            where=_USAGE.c.uses < limit,
        )
        .returning(_USAGE.c.uses)
    )
    return db.execute(statement).first() is not None


def redeem(db: Any, *, order_id: str, user_id: int, quote: Quote, now: datetime) -> None:
    """Hold one use of every promotion ``quote`` applied, for ``order_id``, in the caller's
    transaction (the order's; ``db`` is its Session or Connection). Raises
    :class:`CouponExhausted` when a limit is reached; the caller's rollback then undoes the
    uses this call took before."""
    t = _PROMOTIONS
    for applied in quote.redemptions:
        promotion_id = applied["promotion_id"]
        taken = db.execute(
            update(t)
            .where(
                t.c.id == promotion_id,
                _in_window_core(now),
                or_(t.c.max_uses.is_(None), t.c.uses < t.c.max_uses),
            )
            .values(uses=t.c.uses + 1, updated_at=now)
            .returning(t.c.max_uses_per_customer)
        ).first()
        if taken is None:
            raise CouponExhausted(applied["code"], per_customer=False)
        limit = taken.max_uses_per_customer
        if limit is not None and not _take_customer_use(db, promotion_id, limit, user_id):
            raise CouponExhausted(applied["code"], per_customer=True)
        db.execute(
            insert(_REDEMPTIONS).values(
                order_id=order_id,
                promotion_id=promotion_id,
                user_id=user_id,
                code=applied["code"],
                discount_minor=applied["discount_minor"],
                status=HELD,
                created_at=now,
                updated_at=now,
            )
        )


# The batch's counter update: the rows are locked by its read, so one statement for all.
_ADD_USES = BulkStatement(
    update(_PROMOTIONS)
    .where(_PROMOTIONS.c.id == bindparam("b_promotion_id"))
    .values(uses=_PROMOTIONS.c.uses + bindparam("b_n"), updated_at=bindparam("b_now")),
    one_statement=True,
)


def _capped(row: Any) -> bool:
    return row.max_uses is not None or row.max_uses_per_customer is not None


class BatchHolds:
    """The uses of many orders' promotions, decided at once from counters read locked.

    The checkout's batch places dozens of orders in one transaction, most of them with the same
    site-wide coupon; one conditional UPDATE per order on that one row is what the per-order
    saga does, and it made every coupon order leave the batch. Here, as with stock, the
    counters are read once (``FOR UPDATE`` on PostgreSQL for a promotion with a limit; SQLite's
    write lock excludes every other writer), each order in arrival order takes its uses in
    memory or is refused with :class:`CouponExhausted` (all of an order's promotions or none),
    and :meth:`counters` / :meth:`write` add the taken uses with one statement per promotion
    and per customer. Every writer of a customer's usage row changes the promotion's row first
    in the same transaction, so the promotion's row lock covers the usage rows too; the table's
    ``CHECK (uses <= max_uses)`` would fail the whole transaction if anything ever overdrew.
    """

    def __init__(self, db: Any, *, promotion_ids: list[int], user_ids: list[int], now: datetime):
        t = _PROMOTIONS
        columns = (
            t.c.id,
            t.c.uses,
            t.c.max_uses,
            t.c.max_uses_per_customer,
            t.c.active,
            t.c.starts_at,
            t.c.ends_at,
        )
        ids = sorted(set(promotion_ids))
        self.now = now
        self._rows = {row.id: row for row in db.execute(select(*columns).where(t.c.id.in_(ids)))}
        # Only a limit needs the counter locked while the batch decides (PostgreSQL; SQLite's
        # write lock covers everything). An unlimited site-wide code is then locked only by
        # the counter's UPDATE, which runs in the batch's last round trip, just before the
        # COMMIT: the two workers' batches no longer wait for each other's whole transaction.
        capped = [p for p, row in self._rows.items() if _capped(row)]
        if capped and _dialect(db) == "postgresql":
            locked = select(*columns).where(t.c.id.in_(capped)).order_by(t.c.id).with_for_update()
            self._rows.update({row.id: row for row in db.execute(locked)})
        self._uses = {pid: 0 for pid in self._rows}  # taken by this batch
        # Customers' counts matter only for promotions with a per-customer limit (a site-wide
        # sale code has none: no read, and no round trip while the row is locked).
        limited = sorted(p for p, row in self._rows.items() if row.max_uses_per_customer)
        self._customer: dict[tuple[int, int], int] = {}
        if limited:
            self._customer = {
                (row.promotion_id, row.user_id): row.uses
                for row in db.execute(
                    select(_USAGE.c.promotion_id, _USAGE.c.user_id, _USAGE.c.uses).where(
                        _USAGE.c.promotion_id.in_(limited),
                        _USAGE.c.user_id.in_(sorted(set(user_ids))),
                    )
                )
            }
        self._taken: dict[tuple[int, int], int] = {}  # (promotion, customer) -> this batch's
        self.redemptions: list[dict[str, Any]] = []

    def _refusal(self, applied: dict[str, Any], user_id: int) -> CouponExhausted | None:
        row = self._rows.get(applied["promotion_id"])
        now = self.now
        open_ = (
            row is not None
            and row.active
            and (row.starts_at is None or row.starts_at <= now)
            and (row.ends_at is None or row.ends_at > now)
        )
        if not open_ or (
            row.max_uses is not None and row.uses + self._uses[row.id] >= row.max_uses
        ):
            return CouponExhausted(applied["code"], per_customer=False)
        limit = row.max_uses_per_customer
        pair = (row.id, user_id)
        if limit is not None and self._customer.get(pair, 0) + self._taken.get(pair, 0) >= limit:
            return CouponExhausted(applied["code"], per_customer=True)
        return None

    def take(self, *, order_id: str, user_id: int, quote: Quote) -> CouponExhausted | None:
        """Hold the order's uses in memory; the refusal (nothing held) or None."""
        taken: list[dict[str, Any]] = []
        for applied in quote.redemptions:
            refusal = self._refusal(applied, user_id)
            if refusal is not None:
                for done in taken:  # all of this order's promotions, or none
                    self._uses[done["promotion_id"]] -= 1
                    self._taken[(done["promotion_id"], user_id)] -= 1
                return refusal
            self._uses[applied["promotion_id"]] += 1
            pair = (applied["promotion_id"], user_id)
            self._taken[pair] = self._taken.get(pair, 0) + 1
            taken.append(applied)
        self.redemptions += [
            {
                "order_id": order_id,
                "promotion_id": applied["promotion_id"],
                "user_id": user_id,
                "code": applied["code"],
                "discount_minor": applied["discount_minor"],
                "status": HELD,
                "created_at": self.now,
                "updated_at": self.now,
            }
            for applied in taken
        ]
        return None

    def counters(self, dialect: Any) -> Bound:
        """The promotions' counters plus the uses taken: one bound statement for the batch's
        other statements (on PostgreSQL they and the COMMIT go out in one round trip)."""
        return _ADD_USES.bind(
            dialect,
            [
                {"b_promotion_id": pid, "b_n": n, "b_now": self.now}
                for pid, n in sorted(self._uses.items())
                if n
            ],
        )

    def write(self, db: Any) -> None:
        """Add the uses taken to the customers' counts (promotions with a per-customer limit
        only; the promotions' own counters are :meth:`counters`, the redemption rows, which
        name the orders, :attr:`redemptions`)."""
        insert_ = pg_insert if _dialect(db) == "postgresql" else sqlite_insert
        for (promotion_id, user_id), n in sorted(self._taken.items()):
            if n and self._rows[promotion_id].max_uses_per_customer is not None:
                db.execute(
                    insert_(_USAGE)
                    .values(promotion_id=promotion_id, user_id=user_id, uses=n)
                    .on_conflict_do_update(
                        index_elements=["promotion_id", "user_id"],
                        set_={"uses": _USAGE.c.uses + n},
                    )
                )


def release(db: Any, *, order_id: str, now: datetime) -> int:
    """Give back the uses ``order_id`` holds (its compensation); returns how many. Safe to
    call twice and for orders that used no promotion; ``db`` is a Session or Connection."""
    r = _REDEMPTIONS
    held = db.execute(
        select(r.c.id, r.c.promotion_id, r.c.user_id).where(
            r.c.order_id == order_id, r.c.status == HELD
        )
    ).all()
    released = 0
    for redemption_id, promotion_id, user_id in held:
        moved = db.execute(
            update(r)
            .where(r.c.id == redemption_id, r.c.status == HELD)
            .values(status=RELEASED, updated_at=now)
        ).rowcount
        if moved != 1:
            continue
        released += 1
        db.execute(
            update(_PROMOTIONS)
            .where(_PROMOTIONS.c.id == promotion_id, _PROMOTIONS.c.uses > 0)
            .values(uses=_PROMOTIONS.c.uses - 1, updated_at=now)
        )
        db.execute(
            update(_USAGE)
            .where(
                _USAGE.c.promotion_id == promotion_id,
                _USAGE.c.user_id == user_id,
                _USAGE.c.uses > 0,
            )
            .values(uses=_USAGE.c.uses - 1)
        )
    return released


# --- admin -------------------------------------------------------------------------------

PROMOTION_COLUMNS = (
    "id",
    "code",
    "name",
    "kind",
    "percent_bp",
    "amount_minor",
    "currency",
    "min_subtotal_minor",
    "category_id",
    "starts_at",
    "ends_at",
    "max_uses",
    "max_uses_per_customer",
    "uses",
    "active",
    "created_at",
    "updated_at",
)


def promotion_dict(row: Promotion) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in PROMOTION_COLUMNS}
    for key in ("starts_at", "ends_at", "created_at", "updated_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    return out


def _check(values: dict[str, Any], session: Session) -> None:
    kind = values["kind"]
    if kind == "percent" and not 0 < values.get("percent_bp", 0) <= 10_000:
        raise PricingError("A percent promotion needs 1–10000 basis points", code="invalid")
    if kind == "fixed" and values.get("amount_minor", 0) <= 0:
        raise PricingError("A fixed promotion needs a positive amount_minor", code="invalid")
    if values.get("code") is None and (kind != "percent" or values.get("category_id") is None):
        raise PricingError(
            "An automatic promotion (no code) is a percentage off one category",
            code="invalid",
        )
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        raise PricingError("ends_at must be after starts_at", code="invalid")
    category_id = values.get("category_id")
    if category_id is not None and session.get(Category, category_id) is None:
        raise NotFound("Category", category_id)


def create_promotion(session: Session, values: dict[str, Any], now: datetime) -> dict[str, Any]:
    if values.get("code") is not None:
        values["code"] = normalise_code(values["code"])
        taken = session.execute(
            select(Promotion.id).where(Promotion.code == values["code"])
        ).first()
        if taken:
            raise Conflict(f"Coupon code {values['code']} exists", code="coupon_code_taken")
    _check(values, session)
    row = Promotion(**values, uses=0, created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return promotion_dict(row)


def update_promotion(
    session: Session, promotion_id: int, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    row = session.get(Promotion, promotion_id, with_for_update=True)
    if row is None:
        raise NotFound("Promotion", promotion_id)
    merged = {c: getattr(row, c) for c in PROMOTION_COLUMNS} | changes
    _check(merged, session)
    if merged["max_uses"] is not None and merged["max_uses"] < row.uses:
        raise Conflict(
            f"{row.uses} uses are held; max_uses cannot go below that", code="below_uses"
        )
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now
    session.flush()
    return promotion_dict(row)


def list_promotions(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(select(Promotion).order_by(Promotion.id)).scalars()
    return [promotion_dict(r) for r in rows]


def get_promotion(session: Session, promotion_id: int) -> dict[str, Any]:
    row = session.get(Promotion, promotion_id)
    if row is None:
        raise NotFound("Promotion", promotion_id)
    return promotion_dict(row)
