"""The storefront's pages and assets as the server hands them out (no browser needed)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from serving.api.routes.storefront import CONTENT_SECURITY_POLICY, PAGES, WEB_ROOT

PAGE_SAMPLES = [
    "/",
    "/search?q=headphones",
    "/c/headphones",
    "/p/1",
    "/cart",
    "/checkout",
    "/checkout/done/ord_1",
    "/orders",
    "/orders/ord_1",
    "/orders/ord_1/return",
    "/returns",
    "/membership",
    "/account",
    "/account/addresses",
    "/wishlist",
    "/signin",
    "/signup",
    "/ops",
]
#: The SVG namespace is an identifier inside SVG markup, never fetched.
ALLOWED_URLS = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}[^\s'\"<>)]*", re.IGNORECASE)
WEB_FILES = sorted(p for p in WEB_ROOT.rglob("*") if p.is_file())


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _parse(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_every_page_path_in_the_browser_router_is_served() -> None:
    """The server's page list and app.js's routes describe the same addresses."""
    app_js = (WEB_ROOT / "js" / "app.js").read_text()
    assert len(PAGE_SAMPLES) == len(PAGES)
    for sample in PAGE_SAMPLES:
        path = sample.split("?")[0]
        patterns = re.findall(r"\[/\^(.*?)\$/", app_js)
        assert any(re.fullmatch(p.replace("\\/", "/"), path) for p in patterns), path


@pytest.mark.parametrize("path", PAGE_SAMPLES)
def test_pages_are_html_with_security_headers(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "<main" in r.text


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/js/app.js", "text/javascript; charset=utf-8"),
        ("/static/js/pages/checkout.js", "text/javascript; charset=utf-8"),
        ("/static/css/style.css", "text/css; charset=utf-8"),
        ("/static/img/logo.svg", "image/svg+xml"),
        ("/static/img/placeholder.svg", "image/svg+xml"),
    ],
)
def test_static_assets_have_the_right_content_type(client, path: str, content_type: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/js/../../../serving/app.py",
        "/static/js/missing.js",
        "/static/js",
        "/static/.hidden.js",
        "/static/index.txt",
    ],
)
def test_static_refuses_anything_outside_the_web_root(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert "import" not in r.text


def test_api_is_not_shadowed_by_pages(client) -> None:
    r = client.get("/api/v1/products")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    r = client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", WEB_FILES, ids=lambda p: str(p.relative_to(WEB_ROOT)))
def test_no_file_reaches_another_host(path: Path) -> None:
    """Pages work offline: no script, style, image or link points at another origin."""
    text = path.read_text(errors="replace")
    found = {m.group(0).rstrip(".,;") for m in URL.finditer(text)} - ALLOWED_URLS
    assert not found, f"{path.name} refers to other hosts: {sorted(found)}"


def test_index_references_only_local_assets_and_has_landmarks(client) -> None:
    html = client.get("/").text
    tags = _parse(html).tags
    names = [t for t, _ in tags]
    for landmark in ("header", "nav", "main", "footer"):
        assert landmark in names, landmark
    html_attrs = dict(next(a for t, a in tags if t == "html"))
    assert html_attrs.get("lang") == "en"
    assert any(t == "meta" and a.get("name") == "viewport" for t, a in tags)
    assert any(t == "a" and a.get("href") == "#main" for t, a in tags), "skip link"
    assert any(a.get("aria-live") for _, a in tags), "a live region for messages"
    for tag, attrs in tags:
        for attr in ("src", "href"):
            value = attrs.get(attr)
            if value and tag in ("script", "link", "img"):
                assert value.startswith("/static/"), (tag, value)
    # Every form control in the shell has a label.
    ids = {a.get("for") for t, a in tags if t == "label"}
    for tag, attrs in tags:
        if tag in ("input", "select", "textarea"):
            assert attrs.get("id") in ids or attrs.get("aria-label"), attrs
    assert "<script>" not in html and "style=" not in html, "inline code breaks the CSP"


def test_module_imports_resolve_to_served_files(client) -> None:
    """Every ES module import points at a file the server really serves as JavaScript."""
    imports = re.compile(r"""(?:from\s+|import\s*\(\s*)['"](\.{1,2}/[^'"]+)['"]""")
    for path in (WEB_ROOT / "js").rglob("*.js"):
        for target in imports.findall(path.read_text()):
            resolved = (path.parent / target).resolve()
            assert resolved.is_file(), f"{path.name} imports missing {target}"
            url = "/static/" + resolved.relative_to(WEB_ROOT).as_posix()
            r = client.get(url)
            assert r.status_code == 200 and "javascript" in r.headers["content-type"], url


def test_no_inline_handlers_or_html_injection_sinks() -> None:
    """Text goes in with textContent; innerHTML-style sinks would let API data run script."""
    for path in (WEB_ROOT / "js").rglob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        # A NUL in any path is refused in front of every route (middleware/unstorable_text.py).
        ("/static/%00.js", 400),
        ("/static/js/%00", 400),
        ("/static/" + "a" * 5000 + ".js", 404),
        ("/static/" + "a/" * 3000, 404),
    ],
)
def test_static_names_the_file_system_cannot_look_up_are_4xx(client, path, status):
    """A NUL byte or a name past NAME_MAX raised an OSError and answered 500 (issue 18)."""
    r = client.get(path)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert len(r.json()["detail"]) < 300
