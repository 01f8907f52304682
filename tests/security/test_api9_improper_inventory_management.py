"""API9:2023 Improper Inventory Management: what is served is exactly what is documented.

Every route the app answers is in the OpenAPI schema, except a short list of known
non-API routes (the schema and docs themselves, the storefront's HTML pages and static files).
A forgotten debug or legacy route therefore fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.security.conftest import route_operations, schema_operations

API_DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"

NON_API = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/docs/assets/{name}"),
    ("GET", "/redoc"),
    ("GET", "/static/placeholder/{sku}.svg"),
    ("GET", "/static/{file_path:path}"),
    ("GET", "/favicon.ico"),
}


def _storefront_pages() -> set[tuple[str, str]]:
    try:
        from serving.api.routes.storefront import PAGES
    except ImportError:
        return set()
    return {("GET", page) for page in PAGES}


def test_api9_served_routes_equal_the_documented_schema(client):
    schema = client.get("/openapi.json").json()
    documented = set(schema_operations(schema))
    served = route_operations(client.app)
    assert served - documented - NON_API - _storefront_pages() == set()
    assert documented - served == set()


def test_api9_hidden_routes_are_only_the_known_non_api_ones(client):
    hidden = route_operations(client.app, in_schema=False)
    assert hidden <= NON_API | _storefront_pages(), hidden - NON_API - _storefront_pages()
    # None of them is under the versioned API prefix.
    assert not {p for _, p in hidden if p.startswith("/api/")}


def test_api9_one_api_version_and_every_operation_is_described(client):
    schema = client.get("/openapi.json").json()
    prefixes = {p.split("/")[2] for p in schema["paths"] if p.startswith("/api/")}
    assert prefixes == {"v1"}
    for (method, path), op in schema_operations(schema).items():
        assert op.get("tags"), (method, path)
        assert op.get("summary") or op.get("description"), (method, path)


def _documented_operations() -> set[tuple[str, str]]:
    """Every `METHOD /path` written in docs/api.md (a query string after the path ignored)."""
    text = API_DOC.read_text(encoding="utf-8")
    return set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)", text))


def test_api9_every_operation_is_in_docs_api_md_and_nothing_else(client):
    schema = client.get("/openapi.json").json()
    operations = set(schema_operations(schema))
    documented = _documented_operations()
    assert operations - documented == set(), "operations missing from docs/api.md"
    assert documented - operations == set(), "docs/api.md lists operations that do not exist"
