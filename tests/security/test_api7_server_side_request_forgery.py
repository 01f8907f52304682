"""API7:2023 Server Side Request Forgery: no URL that reaches the server is ever fetched.

Two layers: a source scan that finds every module able to open an outbound connection and
pins it to a reviewed list whose targets come from settings only; and a behaviour test that
gives the API URLs pointing at a live local listener and checks nothing ever connects.
"""

from __future__ import annotations

import re
import select
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("serving", "models", "features")
OUTBOUND = re.compile(
    r"^\s*(import|from)\s+(httpx|requests|aiohttp|urllib3|smtplib|http\.client|"
    r"urllib\.request|elasticsearch|pycurl)\b|urlopen\(|create_connection\(",
    re.M,
)
#: Modules allowed to connect out, and where the address comes from (never a request).
REVIEWED = {
    "serving/services/checkout/payments/webhooks.py": "settings.payment_webhook_url",
    "serving/services/infra/outbox.py": "settings.smtp_url",
    "models/search/es_backend.py": "settings.elasticsearch_url",
    "serving/services/infra/ops_report.py": "settings.dagster_url",  # admin ops page
}


def test_api7_only_reviewed_modules_open_outbound_connections():
    found = set()
    for top in SCANNED:
        for path in (ROOT / top).rglob("*.py"):
            if OUTBOUND.search(path.read_text(encoding="utf-8")):
                found.add(path.relative_to(ROOT).as_posix())
    assert found == set(REVIEWED), "review the new outbound client, then list it: " + str(
        sorted(found ^ set(REVIEWED))
    )


def test_api7_reviewed_modules_take_their_address_from_settings():
    from serving.core.config import Settings

    fields = set(Settings.model_fields)
    for module, source in REVIEWED.items():
        if source.startswith("settings."):
            assert source.removeprefix("settings.") in fields, module
    webhook = (ROOT / "serving/services/checkout/payments/webhooks.py").read_text()
    assert "httpx.post(\n                self._url" in webhook  # the URL is the configured one


def test_api7_urls_in_requests_are_stored_never_fetched(client, admin, small_catalog):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    trap = f"http://127.0.0.1:{port}/internal/admin?x=1"
    try:
        cat = small_catalog["categories"]["home"]
        r = admin.post(
            "/api/v1/products",
            json={
                "sku": "SSRF-1",
                "title": "Trap lamp",
                "category_id": cat,
                "price_minor": 1000,
                "image_urls": [trap, f"file:///etc/passwd#{port}", "gopher://127.0.0.1:1/"],
                "initial_stock": 1,
            },
        )
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert r.json()["image_urls"][0] == trap  # stored as given, not resolved
        admin.patch(f"/api/v1/products/{pid}", json={"image_urls": [trap + "&y=2"]})
        client.get(f"/api/v1/products/{pid}")
        client.get("/api/v1/search", params={"q": trap})
        client.get("/api/v1/recommendations/popular")
        client.get(f"/api/v1/recommendations/products/{pid}/similar")
        client.get("/api/v1/cart", headers={"Referer": trap, "Origin": trap})
        client.post(
            "/api/v1/payments/webhook", content=b"{}", headers={"Storeloop-Signature": trap}
        )
        readable, _, _ = select.select([listener], [], [], 0)
        assert readable == [], "the server connected to a URL taken from a request"
    finally:
        listener.close()
