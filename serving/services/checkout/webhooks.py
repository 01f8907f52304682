"""Payment webhooks, received and applied.

A webhook is a hint, not a fact (docs/security.md, "Payment trust"): after its signature
and its shape are checked, the intent it names is read back from the provider, and only the
provider's status, amounts and order id are acted on. A body naming an intent the provider
does not know, or an order other than the intent's, changes nothing. The transport (signing,
the dispatcher's queue) is :mod:`serving.services.checkout.payments.webhooks`.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from serving.core.clock import utcnow
from serving.core.errors import ProblemError
from serving.db.tables.orders import Order
from serving.db.tables.payments import Payment, WebhookReceipt
from serving.services.checkout import order_states as st
from serving.services.checkout import provider_outage
from serving.services.checkout.payments import Intent, ProviderTimeout, ProviderUnavailable
from serving.services.checkout.payments import events as payment_events
from serving.services.checkout.payments.events import ProviderEvent
from serving.services.checkout.payments.webhooks import verify
from serving.services.checkout.runtime import CheckoutRuntime
from serving.services.checkout.steps import fulfil, release_lines, set_payment, settle

log = logging.getLogger("storeloop.checkout.webhooks")


class WebhookRefused(ProblemError):
    """422: a signed, well-formed event that the provider's own record contradicts."""

    def __init__(self, detail: str, code: str) -> None:
        super().__init__(
            422,
            "Webhook refused",
            f"{detail}; nothing was changed",
            type_="https://storeloop.dev/problems/webhook-refused",
            code=code,
        )


def _parse_event(rt: CheckoutRuntime, body: bytes, signature: str | None) -> ProviderEvent:
    """Signature first (400 if wrong), then the body's shape (400 if malformed)."""
    verify(rt.settings.payment_webhook_secret, body, signature)
    return payment_events.parse(body)


def _read_back(rt: CheckoutRuntime, parsed: list[ProviderEvent]) -> dict[str, Intent]:
    """The named intents as the provider has them (one call for the lot)."""
    ids = sorted({event.intent_id for event in parsed if event.handled})
    if not ids:
        return {}
    try:
        return rt.provider.retrieve_many(ids)
    except (ProviderTimeout, ProviderUnavailable) as exc:
        # The provider delivers again later (and recovery reconciles meanwhile).
        raise provider_outage.PaymentsUnavailable(30.0) from exc


def _checked(event: ProviderEvent, intent: Intent | None) -> dict[str, Any]:
    """The event as the provider confirms it: the order and the facts are the intent's."""
    if intent is None:
        raise WebhookRefused(
            f"The event names payment intent {event.intent_id}, which the provider does not know",
            "unknown_intent",
        )
    order_id = intent.metadata.get("order_id")
    if event.claimed_order_id is not None and event.claimed_order_id != order_id:
        raise WebhookRefused(
            f"Payment intent {intent.id} belongs to another order than the event names",
            "order_mismatch",
        )
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "order_id": order_id if isinstance(order_id, str) else None,
        "intent": intent,
    }


def _receipt_statement(dialect: str, *, returning: bool = True):
    table = WebhookReceipt.__table__
    # RETURNING tells a recorded receipt from a replay (psycopg reports no rowcount for this).
    if dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
    else:
        stmt = insert(table)
    return stmt.returning(table.c.event_id) if returning else stmt


_RECEIPTS: dict[str, Any] = {}
_ORDER_AND_PAYMENT = (
    select(
        Order.status,
        Order.user_id,
        Payment.status.label("payment_status"),
        Payment.idempotency_key.label("payment_key"),
        Payment.amount_minor.label("payment_amount"),
        Payment.currency.label("payment_currency"),
    )
    .outerjoin(Payment, Payment.order_id == Order.id)
    .where(Order.id == bindparam("b_order_id"))
)


def receive_webhook(rt: CheckoutRuntime, *, body: bytes, signature: str | None) -> dict[str, Any]:
    """Apply one provider event; replays are acknowledged and ignored (event id dedupe).

    Order of arrival does not matter: each event is checked against the order's current state
    and only moves it along legal transitions. A late success for a dead order is recorded and
    refunded, never allowed to revive it.
    """
    routed = rt.routed(body)
    if routed is not None:  # another domain's event (a dispute): its own handler
        return routed(body, signature)
    event = _parse_event(rt, body, signature)
    if not event.handled:
        return {"received": True, "ignored": "event type"}
    intents = _read_back(rt, [event])
    checked = _checked(event, intents.get(event.intent_id))
    if checked["order_id"] is None:
        return {"received": True, "ignored": "not an order's payment"}
    return _apply_events(rt, [checked])[0]


def receive_webhooks(rt: CheckoutRuntime, deliveries: list[tuple[bytes, str]]) -> None:
    """In-process delivery of a batch of queued events: one write transaction for all of them.

    The intents are read back in one provider call. Each event runs in its own savepoint, so
    one that fails is rolled back alone (and logged; recovery reconciles its order) while the
    rest are applied. Replays inside the batch are deduplicated by the receipt as usual.
    """
    parsed = []
    for body, signature in deliveries:
        routed = rt.routed(body)
        if routed is not None:  # another domain's event (a dispute): its own handler
            try:
                routed(body, signature)
            except Exception:
                log.warning("a routed in-process webhook failed", exc_info=True)
            continue
        try:
            event = _parse_event(rt, body, signature)
        except ProblemError:
            log.warning("dropping an invalid in-process webhook", exc_info=True)
            continue
        if event.handled:
            parsed.append(event)
    intents = _read_back(rt, parsed)
    checked = []
    for event in parsed:
        try:
            item = _checked(event, intents.get(event.intent_id))
        except WebhookRefused as exc:
            log.warning("webhook %s refused: %s", event.event_id, exc.detail)
            continue
        if item["order_id"] is not None:
            checked.append(item)
    rest = _confirm_settled(rt, checked) if checked else []
    if rest:
        _apply_events(rt, rest)


_SETTLED = (
    select(Order.id, Payment.intent_id)
    .join(Payment, Payment.order_id == Order.id)
    .where(
        Order.id.in_(bindparam("b_ids", expanding=True)),
        Order.status.in_(sorted(st.CHARGED)),
        Payment.status == "succeeded",
    )
)
_CONFIRMATIONS: dict[str, Any] = {}


def _confirms(event: dict[str, Any]) -> bool:
    """A succeeded, unrefunded intent: for a settled order, a confirmation only."""
    intent: Intent = event["intent"]
    return intent.status == "succeeded" and intent.amount_refunded == 0


def _confirm_settled(rt: CheckoutRuntime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record the confirmations of a batch in two statements; return the other events.

    A succeeded intent of an order whose request already settled it with that very intent
    (the common case: the provider confirms what the checkout saw) changes nothing but the
    event's receipt, which :func:`_apply_event` would find out with two statements per event.
    Here one read finds them all and one multi-row insert records their receipts (a replayed
    one is skipped by the unique event id, as there)."""
    candidates = [e for e in events if _confirms(e)]
    if len(candidates) < 2:
        return events
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        conn = session.connection()
        ids = sorted({e["order_id"] for e in candidates})
        settled = {(row[0], row[1]) for row in conn.execute(_SETTLED, {"b_ids": ids})}
        confirmed = [e for e in candidates if (e["order_id"], e["intent"].id) in settled]
        if confirmed:
            dialect = conn.dialect.name
            receipts = _CONFIRMATIONS.get(dialect)
            if receipts is None:
                receipts = _CONFIRMATIONS[dialect] = _receipt_statement(dialect, returning=False)
            now = utcnow()
            conn.execute(
                receipts,
                [
                    {
                        "event_id": e["event_id"],
                        "event_type": e["event_type"],
                        "received_at": now,
                    }
                    for e in confirmed
                ],
            )
        session.commit()
    done = {id(e) for e in confirmed}
    return [e for e in events if id(e) not in done]


def _apply_events(rt: CheckoutRuntime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """All of ``events`` in one transaction; if one fails, again with a savepoint each.

    A savepoint per event would cost two more statements each on the common path, where every
    event applies cleanly; so a batch runs bare first, and only a batch that hit an error is
    replayed with each event isolated (the failing one rolled back alone and logged).
    """
    if len(events) > 1:
        try:
            return _apply_batch(rt, events, isolate=False)
        except Exception:
            log.warning("a webhook batch failed; applying its events one by one", exc_info=True)
    return _apply_batch(rt, events, isolate=len(events) > 1)


def _apply_batch(
    rt: CheckoutRuntime, events: list[dict[str, Any]], *, isolate: bool
) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    to_settle: list[str] = []
    with rt.db.write_gate(), rt.db.session(write=True) as session:
        conn = session.connection()
        dialect = conn.dialect.name
        receipt = _RECEIPTS.get(dialect)
        if receipt is None:
            receipt = _RECEIPTS[dialect] = _receipt_statement(dialect)
        for event in events:
            savepoint = session.begin_nested() if isolate else None
            try:
                answer, settle_it = _apply_event(session, receipt, event)
            except Exception:
                if savepoint is None:
                    raise
                savepoint.rollback()
                log.exception("webhook %s could not be applied", event["event_id"])
                answers.append({"received": False})
                continue
            if savepoint is not None:
                savepoint.commit()
            answers.append(answer)
            if settle_it:
                to_settle.append(event["order_id"])
        session.commit()
    for order_id in to_settle:
        settle(rt, order_id)
    return answers


def _apply_event(session: Session, receipt: Any, event: dict[str, Any]) -> tuple[dict, bool]:
    """One provider-confirmed event inside the caller's transaction; returns the answer and
    whether to settle. Acts on the intent's status, whatever the event's type says."""
    event_id, event_type, order_id = event["event_id"], event["event_type"], event["order_id"]
    intent: Intent = event["intent"]
    order = session.execute(_ORDER_AND_PAYMENT, {"b_order_id": order_id}).first()
    if order is None:
        return {"received": True, "ignored": "unknown order"}, False
    if (
        order.payment_key != intent.idempotency_key
        or order.payment_amount != intent.amount_minor
        or order.payment_currency != intent.currency
    ):
        log.warning("intent %s does not match the charge of order %s", intent.id, order_id)
        return {"received": True, "ignored": "not this order's charge"}, False
    recorded = session.connection().execute(
        receipt, {"event_id": event_id, "event_type": event_type, "received_at": utcnow()}
    )
    if recorded.first() is None:
        return {"received": True, "duplicate": True}, False
    need_settle = False
    status = order.status
    if intent.status == "succeeded":
        need_settle = _succeeded(session, order_id, intent, status, order.payment_status)
    elif intent.status == "requires_payment_method" and status == st.RESERVED:
        _declined(session, order_id, intent)
    if intent.amount_refunded > 0:
        # The provider's figure, and never more than this order's charge.
        refunded = min(intent.amount_refunded, order.payment_amount)
        session.execute(
            update(Payment)
            .where(Payment.order_id == order_id, Payment.refunded_minor < refunded)
            .values(refunded_minor=refunded, updated_at=utcnow())
        )
    return {"received": True}, need_settle


def _succeeded(
    session: Session, order_id: str, intent: Intent, status: str, payment_status: str | None
) -> bool:
    """The provider holds this order's money: finish a reserved order, record it on a charged
    one; True for a dead order (the money goes back, the order is never revived)."""
    if status in st.CHARGED and payment_status == "succeeded":
        return False  # the request settled it already: a confirmation
    moved = False
    if status == st.RESERVED:
        try:
            st.transition(
                session, order_id=order_id, to=st.PAID, only_from={st.RESERVED}, reason="webhook"
            )
            moved = True
        except st.IllegalTransition as exc:  # the request's T2 (or a cancel) just won
            status = exc.extensions.get("current_status")
    if moved:
        set_payment(session, order_id, intent, status="succeeded")
        fulfil(session, order_id=order_id)
        return False
    if status in st.CHARGED:
        session.execute(
            update(Payment)
            .where(Payment.order_id == order_id, Payment.status == "pending")
            .values(status="succeeded", intent_id=intent.id, updated_at=utcnow())
        )
        return False
    return True  # late success for a dead order: refund, never revive


def _declined(session: Session, order_id: str, intent: Intent) -> None:
    """The provider declined this reserved order's charge: payment_failed, stock back."""
    try:
        st.transition(
            session,
            order_id=order_id,
            to=st.PAYMENT_FAILED,
            only_from={st.RESERVED},
            reason="webhook",
        )
    except st.IllegalTransition:
        return  # the request recorded the decline first
    release_lines(session, order_id=order_id, reason="payment_failed")
    set_payment(session, order_id, intent, status="failed", decline_code=intent.decline_code)
