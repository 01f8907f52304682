"""API8:2023 Security Misconfiguration: a NUL in a query or path parameter is a 400, never a 500.

Regression (issue 18): body fields refused NUL, but query and path parameters carried it to
the database: ``GET /api/v1/search?q=a%00b``, ``/api/v1/products?category=%00``, product and
slug paths and ``cursor=`` answered 500 on PostgreSQL (its driver refuses the character) and
worked or 404'd on SQLite. Every GET route is enumerated from the running app (never listed by
hand) and each of its path and query parameters gets a NUL in turn, as an admin so that no
route stops at authentication; each must answer the same 400 problem+json on both databases.
Before ``serving/middleware/unstorable_text.py`` none of them did.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from serving.middleware.unstorable_text import CODE

from .conftest import iter_routes

_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")
#: A harmless value for every path parameter that is not the one under test.
_FILLER = "1"


def _params(dependant, kind: str) -> list[str]:
    """Names of ``kind`` ("path_params" or "query_params") in a route's whole dependency tree."""
    names = [p.alias for p in getattr(dependant, kind)]
    for sub in dependant.dependencies:
        names += [n for n in _params(sub, kind) if n not in names]
    return names


def _get_routes(app) -> list[tuple[str, list[str], list[str]]]:
    """(path template, path parameter names, query parameter names) of every GET route."""
    found = []
    for route in iter_routes(app):
        dependant = getattr(route, "dependant", None)  # FastAPI routes, not plain Starlette ones
        if dependant is not None and "GET" in (route.methods or ()):
            path_names = _params(dependant, "path_params")
            query_names = _params(dependant, "query_params")
            found.append((route.path, path_names, query_names))
    return found


def _url(template: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: quote(values.get(m.group(1), _FILLER), safe=""), template)


def _hostile_requests(app) -> list[tuple[str, str, dict[str, str]]]:
    """(what, url, query) for every GET route and each of its parameters, NUL in that one."""
    cases = []
    for template, path_names, query_names in _get_routes(app):
        for name in path_names:
            cases.append((f"{template} path {name}", _url(template, {name: "a\x00b"}), {}))
        for name in query_names:
            cases.append((f"{template} query {name}", _url(template, {}), {name: "a\x00b"}))
    return cases


def _is_nul_problem(r) -> bool:
    return (
        r.status_code == 400
        and r.headers["content-type"] == "application/problem+json"
        and r.json().get("code") == CODE
    )


def test_api8_every_get_parameter_refuses_nul_alike_on_every_database(app, client, admin):
    cases = _hostile_requests(app)
    # The sweep covers the routes the issue named; an enumeration that found none proves nothing.
    swept = {what for what, _, _ in cases}
    for expected in (
        "/api/v1/search query q",
        "/api/v1/products query category",
        "/api/v1/products query cursor",
    ):
        assert expected in swept, sorted(swept)
    assert any(" path " in what for what in swept)
    wrong = {}
    for what, url, query in cases:
        r = client.get(url, params=query, headers=admin.headers)
        if not _is_nul_problem(r):
            wrong[what] = (r.status_code, r.text[:200])
    assert wrong == {}


def test_api8_the_same_requests_without_nul_are_not_refused_for_it(app, client, admin):
    """The check looks at the NUL, not at the route: the same values without it pass on."""
    refused = []
    for what, url, query in _hostile_requests(app):
        clean_url = url.replace("%00", "")
        clean_query = {k: v.replace("\x00", "") for k, v in query.items()}
        r = client.get(clean_url, params=clean_query, headers=admin.headers)
        assert r.status_code < 500, (what, r.status_code, r.text[:200])
        if r.status_code == 400 and r.json().get("code") == CODE:
            refused.append(what)
    assert refused == []


def test_api8_nul_in_a_parameter_name_or_raw_is_refused_too(client):
    for url in ("/api/v1/products?a%00b=1", "/api/v1/search?q=%00", "/api/v1/products/%00"):
        r = client.get(url)
        assert _is_nul_problem(r), (url, r.status_code, r.text)
        assert "NUL" in r.json()["detail"]
