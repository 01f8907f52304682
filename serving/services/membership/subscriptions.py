"""Subscriptions: start, renew, retry, grace, cancel at period end.

::

    (none|ended) ─subscribe─▶ incomplete ─charged─▶ active ─period end, charged─▶ active
                                   │                   │ └─ period end, cancel requested ─▶ ended
                                   └─declined─▶ ended  └─ renewal declined ─▶ past_due
    past_due ─retry charged─▶ active;  past_due ─grace over, still declined─▶ ended

The provider is never called inside a transaction. Each charge attempt has its own provider
key ``mbr:<membership>:<period>:<attempt>``: a pass that crashed after charging and runs again
finds the same intent instead of charging twice, while a retry after a decline is a new
attempt (a declined intent never turns into a success). A failed renewal is retried after
1, 3 and 5 days; benefits continue through the grace period (7 days after the period's end),
after which an unpaid membership ends. A member who cancels keeps the benefits until the end
of the period paid for.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import Conflict, NotFound, ProblemError
from serving.db.engine import Database
from serving.db.tables.membership import Membership, MembershipCharge
from serving.services.checkout.payments import (
    Intent,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

log = logging.getLogger("storeloop.membership")

PLAN = "monthly"
PRICE_MINOR = 599
CURRENCY = "EUR"
GRACE = timedelta(days=7)
#: Waits before the 1st, 2nd and 3rd retry of a declined renewal.
RETRY_AFTER = (timedelta(days=1), timedelta(days=3), timedelta(days=5))
#: Statuses in which the member has the benefits (past_due only until its grace ends).
LIVE = frozenset({"active", "past_due"})
#: An ``incomplete`` first charge older than this was left by a crash; the pass resolves it.
STALE_INCOMPLETE = timedelta(minutes=2)


def add_month(when: datetime) -> datetime:
    """The same moment one calendar month later (the 31st becomes the month's last day)."""
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def status_of(session: Session, user_id: int, at: datetime | None = None) -> dict[str, Any]:
    """What the shop shows (account page, checkout quote): status, period, benefits."""
    at = at or utcnow()
    m = session.scalar(select(Membership).where(Membership.user_id == user_id))
    if m is None:
        return {"status": "none", "is_member": False, "free_standard_shipping": False}
    member = _has_benefits(m, at)
    return {
        "status": m.status,
        "is_member": member,
        "free_standard_shipping": member,
        "plan": m.plan,
        "price_minor": m.price_minor,
        "currency": m.currency,
        "period_no": m.period_no,
        "current_period_start": m.current_period_start,
        "current_period_end": m.current_period_end,
        "cancel_at_period_end": m.cancel_at_period_end,
        "renewal_failures": m.renewal_failures,
        "next_retry_at": m.next_retry_at,
        "grace_until": m.grace_until,
        "ended_reason": m.ended_reason or None,
    }


def _has_benefits(m: Membership, at: datetime) -> bool:
    if m.status == "active":
        # A renewal due but not yet run by the pass does not take the benefit away.
        return at < m.current_period_end + GRACE
    if m.status == "past_due":
        return m.grace_until is not None and at < m.grace_until
    return False


def has_free_shipping(session: Session, user_id: int, at: datetime | None = None) -> bool:
    """True when ``user_id``'s standard shipping is free at ``at`` (the checkout quote asks)."""
    m = session.scalar(select(Membership).where(Membership.user_id == user_id))
    return m is not None and _has_benefits(m, at or utcnow())


class MembershipPaymentFailed(ProblemError):
    def __init__(self, decline_code: str) -> None:
        super().__init__(
            402,
            "Payment declined",
            f"The membership's first month could not be charged ({decline_code}); no money "
            "was taken",
            type_="https://storeloop.dev/problems/payment-declined",
            decline_code=decline_code,
        )


@dataclass
class Facts:
    """Events for the event log, returned by the functions that caused them."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add(self, event_type: str, user_id: int, **props: Any) -> None:
        self.events.append((event_type, {"user_id": user_id, "props": props}))


def _key(membership_id: int, period: int, attempt: int) -> str:
    return f"mbr:{membership_id}:{period}:{attempt}"


def subscribe(db: Database, provider: Any, *, user_id: int, payment_method: str) -> Facts:
    """Start (or restart) the membership and charge its first month; 402 on a decline."""
    if provider.method(payment_method) is None:
        raise ProblemError(422, detail="Unknown payment method", code="unknown_payment_method")
    now = utcnow()
    with db.write_gate(), db.session(write=True) as s:
        m = s.scalar(select(Membership).where(Membership.user_id == user_id).with_for_update())
        if m is not None and m.status in LIVE | {"incomplete"}:
            raise Conflict(
                f"The membership is {m.status} already",
                type_="https://storeloop.dev/problems/membership-exists",
            )
        values = {
            "plan": PLAN,
            "status": "incomplete",
            "price_minor": PRICE_MINOR,
            "currency": CURRENCY,
            "payment_method": payment_method,
            "current_period_start": now,
            "current_period_end": add_month(now),
            "cancel_at_period_end": False,
            "renewal_failures": 0,
            "next_retry_at": None,
            "grace_until": None,
            "ended_reason": "",
            "updated_at": now,
        }
        if m is None:
            m = Membership(user_id=user_id, period_no=1, created_at=now, **values)
            s.add(m)
        else:
            # A restart is a new first period, numbered after every period ever tried: a
            # declined renewal's key must not be reused (it would return that decline).
            tried = s.scalar(
                select(func.max(MembershipCharge.period_no)).where(
                    MembershipCharge.membership_id == m.id
                )
            )
            for name, value in values.items():
                setattr(m, name, value)
            m.period_no = max(m.period_no, tried or 0) + 1
        try:
            s.flush()
        except IntegrityError:  # another request of this user created it just now
            s.rollback()
            raise Conflict(
                "The membership is being started already",
                type_="https://storeloop.dev/problems/membership-exists",
            ) from None
        membership_id, period = m.id, m.period_no
        s.commit()
    intent = _charge(provider, membership_id, user_id, period, 1, payment_method)
    facts = Facts()
    _first_charge_result(db, membership_id, user_id, period, intent, facts)
    if intent is not None and intent.status != "succeeded":
        raise MembershipPaymentFailed(intent.decline_code or "generic_decline")
    return facts


def _charge(
    provider: Any, membership_id: int, user_id: int, period: int, attempt: int, method: str
) -> Intent | None:
    """One attempt at the provider; None when it did not answer (the pass tries again)."""
    try:
        return provider.charge(
            amount_minor=PRICE_MINOR,
            currency=CURRENCY,
            payment_method=method,
            idempotency_key=_key(membership_id, period, attempt),
            metadata={"membership_id": membership_id, "user_id": user_id, "period": period},
        )
    except (ProviderTimeout, ProviderUnavailable) as exc:
        log.warning("membership %s charge unanswered: %s", membership_id, exc)
        return None
    except ProviderError as exc:
        log.warning("membership %s charge refused: %s", membership_id, exc)
        return None


def _record_charge(
    s: Session, membership_id: int, period: int, attempt: int, intent: Intent
) -> None:
    known = s.scalar(
        select(MembershipCharge.id).where(
            MembershipCharge.idempotency_key == _key(membership_id, period, attempt)
        )
    )
    if known is None:
        s.add(
            MembershipCharge(
                membership_id=membership_id,
                period_no=period,
                attempt=attempt,
                idempotency_key=_key(membership_id, period, attempt),
                intent_id=intent.id,
                status="succeeded" if intent.status == "succeeded" else "failed",
                amount_minor=intent.amount_minor,
                currency=intent.currency,
                decline_code=intent.decline_code,
                created_at=utcnow(),
            )
        )


def _first_charge_result(
    db: Database, membership_id: int, user_id: int, period: int, intent: Intent | None, facts: Facts
) -> None:
    if intent is None or intent.status == "processing":
        return  # unanswered: stays incomplete, the pass asks the provider by the key
    now = utcnow()
    with db.write_gate(), db.session(write=True) as s:
        ok = intent.status == "succeeded"
        moved = s.execute(
            update(Membership)
            .where(
                Membership.id == membership_id,
                Membership.status == "incomplete",
                Membership.period_no == period,
            )
            .values(
                status="active" if ok else "ended",
                ended_reason="" if ok else "first_payment_failed",
                updated_at=now,
            )
        ).rowcount
        if moved:
            _record_charge(s, membership_id, period, 1, intent)
            if ok:
                facts.add("membership_started", user_id, membership_id=membership_id, period=period)
        s.commit()


def cancel(session: Session, *, user_id: int, resume: bool = False) -> dict[str, Any]:
    """Cancel at the end of the period paid for (or take that back with ``resume``). Commits."""
    result = session.execute(
        update(Membership)
        .where(Membership.user_id == user_id, Membership.status.in_(sorted(LIVE)))
        .values(cancel_at_period_end=not resume, updated_at=utcnow())
    )
    if result.rowcount != 1:
        session.rollback()
        raise NotFound("Membership of user", user_id)
    session.commit()
    return status_of(session, user_id)


def change_method(db: Database, provider: Any, *, user_id: int, payment_method: str) -> None:
    """Charge future renewals (and the next retry) to another card."""
    if provider.method(payment_method) is None:
        raise ProblemError(422, detail="Unknown payment method", code="unknown_payment_method")
    with db.write_gate(), db.session(write=True) as s:
        result = s.execute(
            update(Membership)
            .where(Membership.user_id == user_id, Membership.status.in_(sorted(LIVE)))
            .values(payment_method=payment_method, updated_at=utcnow())
        )
        if result.rowcount != 1:
            raise NotFound("Membership of user", user_id)
        s.commit()


def run_due(db: Database, provider: Any, *, now: datetime | None = None) -> Facts:
    """One renewal pass: end cancelled and unpaid memberships, charge due renewals and retries,
    resolve first charges a crash left ``incomplete``. Safe to run concurrently and again."""
    now = now or utcnow()
    facts = Facts()
    with db.session() as s:
        due = s.execute(
            select(
                Membership.id,
                Membership.user_id,
                Membership.status,
                Membership.period_no,
                Membership.renewal_failures,
                Membership.payment_method,
                Membership.current_period_end,
                Membership.cancel_at_period_end,
                Membership.grace_until,
                Membership.updated_at,
            )
            .where(
                or_(
                    (Membership.status == "active") & (Membership.current_period_end <= now),
                    (Membership.status == "past_due") & (Membership.next_retry_at <= now),
                    (Membership.status == "incomplete")
                    & (Membership.updated_at <= now - STALE_INCOMPLETE),
                )
            )
            .order_by(Membership.id)
        ).all()
    for m in due:
        if m.status == "incomplete":
            _resolve_incomplete(db, provider, m, facts)
        elif m.status == "active" and m.cancel_at_period_end:
            _end(db, m, "cancelled", now, facts)
        elif m.status == "past_due" and m.grace_until is not None and m.grace_until <= now:
            _end(db, m, "payment_failed", now, facts)
        else:
            _renew(db, provider, m, now, facts)
    return facts


def _resolve_incomplete(db: Database, provider: Any, m: Any, facts: Facts) -> None:
    try:
        intent = provider.find_intent(_key(m.id, m.period_no, 1))
    except (ProviderTimeout, ProviderUnavailable):
        return
    if intent is None:  # never charged: nothing taken, nothing to keep
        with db.write_gate(), db.session(write=True) as s:
            s.execute(
                update(Membership)
                .where(Membership.id == m.id, Membership.status == "incomplete")
                .values(status="ended", ended_reason="not_charged", updated_at=utcnow())
            )
            s.commit()
        return
    _first_charge_result(db, m.id, m.user_id, m.period_no, intent, facts)


def _end(db: Database, m: Any, reason: str, now: datetime, facts: Facts) -> None:
    with db.write_gate(), db.session(write=True) as s:
        moved = s.execute(
            update(Membership)
            .where(Membership.id == m.id, Membership.status == m.status)
            .values(
                status="ended",
                ended_reason=reason,
                next_retry_at=None,
                cancel_at_period_end=False,
                updated_at=now,
            )
        ).rowcount
        s.commit()
    if moved:
        facts.add("membership_ended", m.user_id, membership_id=m.id, reason=reason)


def _renew(db: Database, provider: Any, m: Any, now: datetime, facts: Facts) -> None:
    period, attempt = m.period_no + 1, m.renewal_failures + 1
    intent = _charge(provider, m.id, m.user_id, period, attempt, m.payment_method)
    if intent is None or intent.status == "processing":
        return  # unanswered: the next pass asks again with the same key
    with db.write_gate(), db.session(write=True) as s:
        guard = (
            (Membership.id == m.id)
            & (Membership.period_no == m.period_no)
            & (Membership.renewal_failures == m.renewal_failures)
            & (Membership.status == m.status)
        )
        if intent.status == "succeeded":
            values: dict[str, Any] = {
                "status": "active",
                "period_no": period,
                "current_period_start": m.current_period_end,
                "current_period_end": add_month(m.current_period_end),
                "renewal_failures": 0,
                "next_retry_at": None,
                "grace_until": None,
                "updated_at": now,
            }
            event = ("membership_renewed", {"period": period, "attempt": attempt})
        else:
            grace = m.grace_until or (m.current_period_end + GRACE)
            retry = now + RETRY_AFTER[attempt - 1] if attempt <= len(RETRY_AFTER) else grace
            values = {
                "status": "past_due",
                "renewal_failures": attempt,
                "next_retry_at": min(retry, grace),
                "grace_until": grace,
                "updated_at": now,
            }
            event = (
                "membership_renewal_failed",
                {"period": period, "attempt": attempt, "decline_code": intent.decline_code},
            )
        moved = s.execute(update(Membership).where(guard).values(**values)).rowcount
        if moved:
            _record_charge(s, m.id, period, attempt, intent)
        s.commit()
    if moved:
        facts.add(event[0], m.user_id, membership_id=m.id, **event[1])
