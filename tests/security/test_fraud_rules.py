"""Fraud signals (services/fraud.py, services/checkout/holds.py): the rules, then held orders."""

from __future__ import annotations

from serving.services.fraud import FraudRules, History, OrderFacts, address_key, assess

RULES = FraudRules(
    window_minutes=60,
    max_orders_per_account=3,
    max_orders_per_card=3,
    max_accounts_per_address=2,
    amount_vs_history_factor=5.0,
    min_history_orders=3,
    amount_global_percentile=0.99,
    global_min_orders=100,
    absolute_max_minor=100_000,
)
FACTS = OrderFacts(user_id=1, total_minor=3000, payment_method="pm_a", address_key="pt|1000")


def test_an_ordinary_order_passes():
    history = History(
        account_orders_in_window=1,
        card_orders_in_window=1,
        user_previous_totals=(2500, 3100, 2900),
        global_order_count=1000,
        global_percentile_minor=20_000,
    )
    assert assess(FACTS, history, RULES).hold is False


def test_velocity_per_account_card_and_address():
    assert assess(FACTS, History(account_orders_in_window=2), RULES).hold is False
    account = assess(FACTS, History(account_orders_in_window=3), RULES)
    assert account.hold and account.reasons[0].startswith("velocity:account 4")
    card = assess(FACTS, History(card_orders_in_window=3), RULES)
    assert card.hold and "velocity:card" in card.summary
    assert assess(FACTS, History(other_accounts_at_address_in_window=1), RULES).hold is False
    address = assess(FACTS, History(other_accounts_at_address_in_window=2), RULES)
    assert address.hold and "velocity:address 3 accounts" in address.summary


def test_amount_outlier_against_own_history_needs_enough_history():
    big = OrderFacts(1, 20_000, "pm_a", "k")
    assert assess(big, History(user_previous_totals=(2000, 3000)), RULES).hold is False
    decision = assess(big, History(user_previous_totals=(2000, 3000, 4000)), RULES)
    assert decision.hold and decision.reasons == ("amount:history 20000 > 5 x median 3000",)
    # Zero totals (free orders) do not count as history.
    assert assess(big, History(user_previous_totals=(0, 0, 0, 3000)), RULES).hold is False


def test_amount_outlier_against_everyone_needs_enough_orders():
    big = OrderFacts(1, 50_000, "pm_a", "k")
    few = History(global_order_count=99, global_percentile_minor=10_000)
    assert assess(big, few, RULES).hold is False
    many = History(global_order_count=100, global_percentile_minor=10_000)
    assert assess(big, many, RULES).reasons == ("amount:global 50000 > p99 10000",)
    assert assess(OrderFacts(1, 100_001, "pm_a", "k"), History(), RULES).reasons == (
        "amount:ceiling 100001 > 100000",
    )


def test_several_reasons_are_all_reported():
    decision = assess(
        OrderFacts(1, 200_000, "pm_a", "k"),
        History(account_orders_in_window=9, card_orders_in_window=9),
        RULES,
    )
    assert [r.split(" ")[0] for r in decision.reasons] == [
        "velocity:account",
        "velocity:card",
        "amount:ceiling",
    ]


def test_address_key_ignores_case_spacing_and_punctuation():
    a = {
        "name": "A",
        "line1": "1 Main  Street.",
        "city": "Lisbon",
        "postal_code": "1000-001",
        "country": "PT",
    }
    b = {
        "name": "B",
        "line1": "1 main street",
        "city": "LISBON",
        "postal_code": "1000 001",
        "country": "pt",
    }
    assert address_key(a) == address_key(b)
    assert address_key(a) != address_key({**a, "line1": "2 Main Street"})
    assert address_key(None) == address_key({})


# ---------------------------------------------------------------- held orders end to end

import pytest  # noqa: E402

from tests.checkout.conftest import order_body, place, tokenise  # noqa: E402


@pytest.fixture
def settings(settings):
    """Tight velocity so the third order of an account within the hour is held."""
    return settings.model_copy(update={"fraud_enabled": True, "fraud_max_orders_per_account": 2})


def _stock(app, pid):
    from serving.services.shop import inventory

    with app.state.components.db.session() as s:
        return inventory.stock_of(s, pid)


def test_velocity_holds_the_order_and_an_admin_releases_or_rejects_it(
    app, client, customer, admin, make_product
):
    pid = make_product(10, price=2000)
    statuses = [
        place(customer, order_body(tokenise(client), [(pid, 1)])).json()["status"] for _ in range(4)
    ]
    assert statuses == ["fulfilled", "fulfilled", "held", "held"]
    assert _stock(app, pid)["reserved"] == 4  # held orders keep their stock
    held = admin.get("/api/v1/admin/orders/held").json()
    assert held["count"] == 2 and "velocity:account" in held["data"][0]["reasons"]
    first, second = (h["id"] for h in held["data"])
    assert customer.get(f"/api/v1/orders/{first}").json()["payment"]["status"] == "succeeded"
    # Only admins decide.
    assert customer.post(f"/api/v1/admin/orders/{first}/release").status_code == 403
    assert customer.post(f"/api/v1/orders/{first}/cancel").status_code == 409
    released = admin.post(f"/api/v1/admin/orders/{first}/release")
    assert released.status_code == 200 and released.json()["status"] == "fulfilled"
    assert released.json()["shipment"] is not None
    rejected = admin.post(f"/api/v1/admin/orders/{second}/reject")
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "refunded"
    assert rejected.json()["payment"]["refunded_minor"] == rejected.json()["total_minor"]
    assert _stock(app, pid)["reserved"] == 3
    # Decided orders cannot be decided again, and unknown ones are 404.
    assert admin.post(f"/api/v1/admin/orders/{first}/reject").status_code == 409
    assert admin.post("/api/v1/admin/orders/ord_nope/release").status_code == 404
    assert admin.get("/api/v1/admin/orders/held").json()["count"] == 0


def test_fraud_rules_can_be_switched_off(app, client, customer, make_product):
    from serving.services.checkout import holds

    app.state.components.settings.fraud_enabled = False
    holds.configure(app.state.components.settings)
    try:
        pid = make_product(10)
        statuses = [
            place(customer, order_body(tokenise(client), [(pid, 1)])).json()["status"]
            for _ in range(3)
        ]
        assert statuses == ["fulfilled"] * 3
    finally:
        holds.configure(app.state.components.settings.model_copy(update={"fraud_enabled": False}))
