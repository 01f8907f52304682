"""/docs and /redoc work offline: every asset from this origin, under a CSP, no inline script."""

from __future__ import annotations

import re

import pytest

from serving.api.routes.docs import DOCS_CSP


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets_under_a_csp(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == DOCS_CSP
    assert "script-src 'self';" in DOCS_CSP and "unsafe-eval" not in DOCS_CSP
    assert "cdn" not in r.text.lower() and "http" not in r.text
    assert not re.search(r"<script>(?!</script>)", r.text), "inline script breaks the CSP"
    for url in re.findall(r'(?:src|href)="([^"]+)"', r.text):
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 10, url


def test_swagger_bundle_is_version_5_and_reads_the_app_schema(client) -> None:
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert len(bundle.content) > 500_000
    assert "/openapi.json" in client.get("/docs/assets/swagger-init.js").text
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_only_named_docs_assets_are_served(client) -> None:
    for name in ("__init__.py", "..%2Fcore.py", "core.py", "missing.js"):
        assert client.get(f"/docs/assets/{name}").status_code == 404
