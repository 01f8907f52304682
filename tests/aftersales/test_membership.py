"""Membership: paid monthly through the provider; renewals, a declined renewal retried inside
the grace period, cancel at period end; free standard shipping while it lasts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from serving.core.clock import utcnow
from serving.db.tables.membership import Membership, MembershipCharge
from serving.db.tables.payments import SimPaymentIntent
from serving.services import membership
from serving.services.aftersales.runtime import aftersales_runtime
from serving.services.membership import subscriptions
from tests.checkout.conftest import tokenise


def _me(app, customer) -> int:
    return customer.get("/api/v1/me").json()["id"]


def _charges(app, user_id: int) -> list[tuple[int, int, str]]:
    with app.state.components.db.session() as s:
        return [
            (c.period_no, c.attempt, c.status)
            for c in s.scalars(
                select(MembershipCharge)
                .join(Membership, Membership.id == MembershipCharge.membership_id)
                .where(Membership.user_id == user_id)
                .order_by(MembershipCharge.id)
            )
        ]


def _run(app, at):
    rt = aftersales_runtime(app)
    return subscriptions.run_due(rt.db, rt.provider, now=at)


def test_subscribe_renew_and_cancel_at_period_end(app, client, customer):
    uid = _me(app, customer)
    assert customer.get("/api/v1/membership").json() == {
        "status": "none",
        "is_member": False,
        "free_standard_shipping": False,
    }
    r = customer.post("/api/v1/membership", json={"payment_method": tokenise(client)})
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["status"] == "active" and m["is_member"] and m["free_standard_shipping"]
    assert (
        customer.post("/api/v1/membership", json={"payment_method": tokenise(client)}).status_code
        == 409
    )
    end = subscriptions.status_of
    with app.state.components.db.session() as s:
        period_end = s.scalar(select(Membership.current_period_end))
        assert membership.has_free_shipping(s, uid, period_end - timedelta(seconds=1))
    # Renewal at the end of the month: a second period, charged once even if run twice.
    _run(app, period_end)
    _run(app, period_end)
    assert _charges(app, uid) == [(1, 1, "succeeded"), (2, 1, "succeeded")]
    now = customer.get("/api/v1/membership").json()
    assert now["period_no"] == 2 and now["status"] == "active"
    # Cancel: the benefits stay until the end of the paid period, then it ends, uncharged.
    r = customer.post("/api/v1/membership/cancel")
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True
    with app.state.components.db.session() as s:
        second_end = s.scalar(select(Membership.current_period_end))
        assert membership.has_free_shipping(s, uid, second_end - timedelta(hours=1))
    _run(app, second_end)
    with app.state.components.db.session() as s:
        assert end(s, uid, second_end)["status"] == "ended"
        assert not membership.has_free_shipping(s, uid, second_end)
    assert len(_charges(app, uid)) == 2
    assert customer.post("/api/v1/membership/cancel").status_code == 404


def test_declined_renewal_retries_inside_the_grace_period_then_recovers(app, client, customer):
    uid = _me(app, customer)
    customer.post("/api/v1/membership", json={"payment_method": tokenise(client)})
    declining = tokenise(client, "insufficient_funds")
    r = customer.post("/api/v1/membership/payment-method", json={"payment_method": declining})
    assert r.status_code == 200, r.text
    with app.state.components.db.session() as s:
        period_end = s.scalar(select(Membership.current_period_end))
    _run(app, period_end)
    state = customer.get("/api/v1/membership").json()
    assert state["status"] == "past_due" and state["renewal_failures"] == 1
    assert state["is_member"] is True  # inside the grace period the benefit stays
    # Before the retry is due nothing is charged; at the retry it fails again.
    _run(app, period_end + timedelta(hours=12))
    assert len(_charges(app, uid)) == 2
    _run(app, period_end + timedelta(days=1, minutes=1))
    assert customer.get("/api/v1/membership").json()["renewal_failures"] == 2
    # The member fixes the card: the next retry succeeds, the period continues from its end.
    customer.post("/api/v1/membership/payment-method", json={"payment_method": tokenise(client)})
    _run(app, period_end + timedelta(days=5))
    state = customer.get("/api/v1/membership").json()
    assert state["status"] == "active" and state["period_no"] == 2
    assert state["renewal_failures"] == 0 and state["grace_until"] is None
    assert _charges(app, uid) == [
        (1, 1, "succeeded"),
        (2, 1, "failed"),
        (2, 2, "failed"),
        (2, 3, "succeeded"),
    ]
    with app.state.components.db.session() as s:
        assert s.scalar(select(Membership.current_period_start)) == period_end


def test_unpaid_membership_ends_when_the_grace_period_runs_out(app, client, customer):
    uid = _me(app, customer)
    customer.post("/api/v1/membership", json={"payment_method": tokenise(client)})
    customer.post(
        "/api/v1/membership/payment-method",
        json={"payment_method": tokenise(client, "generic_decline")},
    )
    with app.state.components.db.session() as s:
        period_end = s.scalar(select(Membership.current_period_end))
    for day in (0, 1, 4, 7, 8):
        _run(app, period_end + timedelta(days=day, minutes=1))
    state = customer.get("/api/v1/membership").json()
    assert state["status"] == "ended" and state["ended_reason"] == "payment_failed"
    with app.state.components.db.session() as s:
        assert not membership.has_free_shipping(s, uid, period_end + timedelta(days=8))
    attempts = [c for c in _charges(app, uid) if c[0] == 2]
    assert [a[2] for a in attempts] == ["failed"] * len(attempts)
    assert 1 <= len(attempts) <= 4
    # It can be started again, with a card that works.
    r = customer.post("/api/v1/membership", json={"payment_method": tokenise(client)})
    assert r.status_code == 201 and r.json()["status"] == "active"


def test_declined_first_month_is_402_and_no_membership(app, client, customer):
    r = customer.post(
        "/api/v1/membership", json={"payment_method": tokenise(client, "expired_card")}
    )
    assert r.status_code == 402 and r.json()["decline_code"] == "expired_card"
    assert customer.get("/api/v1/membership").json()["is_member"] is False
    r = customer.post("/api/v1/membership", json={"payment_method": "pm_doesnotexist"})
    assert r.status_code == 422
    assert client.get("/api/v1/membership").status_code == 401


def test_crash_after_the_first_charge_is_resolved_by_the_key(app, client, customer):
    """A subscribe that died after the provider charged: the pass finds the charge by its key
    and activates the membership instead of charging again."""
    uid = _me(app, customer)
    pm = tokenise(client)
    rt = aftersales_runtime(app)
    now = utcnow()
    with rt.db.session(write=True) as s:
        m = Membership(
            user_id=uid,
            plan="monthly",
            status="incomplete",
            price_minor=599,
            currency="EUR",
            payment_method=pm,
            period_no=1,
            current_period_start=now,
            current_period_end=subscriptions.add_month(now),
            cancel_at_period_end=False,
            renewal_failures=0,
            ended_reason="",
            created_at=now,
            updated_at=now,
        )
        s.add(m)
        s.commit()
        mid = m.id
    subscriptions._charge(rt.provider, mid, uid, 1, 1, pm)  # charged, then the process died
    _run(app, now + timedelta(minutes=5))
    assert customer.get("/api/v1/membership").json()["status"] == "active"
    with app.state.components.db.session() as s:
        assert len(s.scalars(select(SimPaymentIntent.id)).all()) == 1


def test_add_month_keeps_the_day_or_takes_the_last():
    from datetime import UTC, datetime

    assert subscriptions.add_month(datetime(2026, 1, 31, tzinfo=UTC)) == datetime(
        2026, 2, 28, tzinfo=UTC
    )
    assert subscriptions.add_month(datetime(2026, 12, 15, 9, tzinfo=UTC)) == datetime(
        2027, 1, 15, 9, tzinfo=UTC
    )
