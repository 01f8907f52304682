"""API8:2023 Security Misconfiguration: headers, CORS closed by default, no debug output.

``tests/api/test_errors.py::test_request_id_and_security_headers`` checks nosniff on one route;
this checks the full header set on every kind of response, the CSP split between API responses
and storefront pages, CORS, and that a crash shows nothing of the server's insides.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cross-origin-opener-policy": "same-origin",
}


def test_api8_security_headers_on_every_kind_of_response(client):
    responses = [
        client.get("/healthz"),
        client.get("/api/v1/categories"),
        client.get("/api/v1/products/999999"),  # 404 problem
        client.get("/api/v1/nowhere"),  # unmatched
        client.post("/api/v1/auth/register", json={}),  # 422 problem
        client.get("/api/v1/me"),  # 401
    ]
    for r in responses:
        for name, value in EXPECTED.items():
            assert r.headers.get(name) == value, (r.url, name)
        assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_api8_storefront_pages_keep_their_own_single_csp(client):
    r = client.get("/")
    if r.status_code == 404:
        pytest.skip("storefront not present")
    policies = r.headers.get_list("content-security-policy")
    assert len(policies) == 1 and "script-src 'self'" in policies[0]
    assert r.headers["x-frame-options"] == "DENY"


def test_api8_storefront_has_no_inline_script_or_style_the_csp_would_block():
    web = ROOT / "storefront" / "web"
    if not web.exists():
        pytest.skip("storefront not present")
    for page in web.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), page
        assert "<style" not in html and not re.search(r"\son[a-z]+=", html), page


def test_api8_cors_is_closed_by_default(client):
    preflight = client.options(
        "/api/v1/cart",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    simple = client.get("/api/v1/categories", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


def test_api8_cors_allows_only_the_configured_origins(settings):
    opened = settings.model_copy(update={"cors_origins": "https://shop.example"})
    with TestClient(create_app(opened)) as c:
        ok = c.options(
            "/api/v1/cart",
            headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
        )
        assert ok.headers["access-control-allow-origin"] == "https://shop.example"
        assert "access-control-allow-credentials" not in ok.headers
        bad = c.get("/api/v1/categories", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in bad.headers


def test_api8_a_crash_shows_no_traceback(settings):
    app = create_app(settings)

    @app.get("/api/v1/_test_boom", include_in_schema=False)
    def boom() -> None:
        raise RuntimeError("secret-internal-detail at /srv/storeloop/db.py line 42")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/api/v1/_test_boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": "Internal error",
        "instance": "/api/v1/_test_boom",
    }
    assert "Traceback" not in r.text and "secret-internal-detail" not in r.text


def test_api8_no_debug_mode_and_no_extra_doc_pages(client):
    assert client.app.debug is False
    assert client.get("/debug").status_code == 404
    r = client.get("/api/v1/products/not-a-number")
    assert r.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in r.text


def test_api8_session_cookie_is_httponly_and_samesite(client):
    r = client.get("/api/v1/cart")
    cookie = r.headers.get("set-cookie", "")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_api8_no_shared_default_webhook_secret(tmp_path, monkeypatch):
    """Regression (issue 18): every install shipped ``whsec_storeloop_simulated``, so anyone
    could sign provider events. Unset, the secret is generated once per install into DATA_DIR
    (owner-only, kept across restarts, different for another install)."""
    from serving.core.config import Settings

    monkeypatch.delenv("STORELOOP_PAYMENT_WEBHOOK_SECRET", raising=False)
    one = Settings(data_dir=tmp_path / "one").payment_webhook_secret
    again = Settings(data_dir=tmp_path / "one").payment_webhook_secret
    other = Settings(data_dir=tmp_path / "two").payment_webhook_secret
    assert one == again != other
    assert "storeloop_simulated" not in one and len(one) >= 48
    assert (tmp_path / "one" / "payment_webhook_secret").stat().st_mode & 0o077 == 0
    explicit = "whsec_" + "k" * 40
    assert (
        Settings(data_dir=tmp_path, payment_webhook_secret_value=explicit).payment_webhook_secret
        == explicit
    )
    monkeypatch.setenv("STORELOOP_PAYMENT_WEBHOOK_SECRET", explicit)
    assert Settings(data_dir=tmp_path / "three").payment_webhook_secret == explicit
    assert not (tmp_path / "three" / "payment_webhook_secret").exists()


def test_api8_production_refuses_to_start_without_a_webhook_secret(tmp_path, monkeypatch):
    """In production the secret is the real provider's: a generated one would silently refuse
    every real event, and a short one is guessable. Both refuse to start, with one clear line."""
    import subprocess
    import sys

    from serving.core.config import Settings

    monkeypatch.delenv("STORELOOP_PAYMENT_WEBHOOK_SECRET", raising=False)
    production = Settings(data_dir=tmp_path, environment="production", jwt_secret_value="j" * 40)
    with pytest.raises(ValueError, match="STORELOOP_PAYMENT_WEBHOOK_SECRET must be set"):
        create_app(production)
    short = production.model_copy(update={"payment_webhook_secret_value": "whsec_short"})
    with pytest.raises(ValueError, match="at least 32 characters"):
        _ = short.payment_webhook_secret
    env = {
        "PATH": "/usr/bin:/bin",
        "DATA_DIR": str(tmp_path),
        "STORELOOP_ENVIRONMENT": "production",
        "JWT_SECRET": "j" * 40,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from serving.cli import main; sys.exit(main())",
            "serve",
            "--no-migrate",
            "--port",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "storeloop serve: STORELOOP_PAYMENT_WEBHOOK_SECRET must be set in production "
        "(the payment provider's webhook signing secret)"
    ]
