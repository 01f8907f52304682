"""API5:2023 Broken Function Level Authorization: admin functions refuse everyone else.

Admin routes are found from the app itself (routes whose dependency tree includes the admin
check) and cross-checked with the OpenAPI schema, so a new admin route is covered without
editing this file; a new *unguarded* write route fails ``test_api5_unguarded_writes_are_known``
until someone decides it is meant for customers.
"""

from __future__ import annotations

from serving.api.deps import get_admin
from tests.security.conftest import (
    WRITE_METHODS,
    calls_of,
    fill_path,
    iter_routes,
    schema_operations,
)

#: Writes open to customers or anonymous callers, each on purpose.
CUSTOMER_WRITES = {
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/events"),
    ("POST", "/api/v1/cart/items"),
    ("PATCH", "/api/v1/cart/items/{product_id}"),
    ("DELETE", "/api/v1/cart/items/{product_id}"),
    ("POST", "/api/v1/orders"),
    ("POST", "/api/v1/orders/{order_id}/cancel"),
    ("POST", "/api/v1/payments/methods"),
    ("POST", "/api/v1/payments/webhook"),  # signed by the provider (API10)
    ("POST", "/api/v1/products/{product_id}/reviews"),
    # The caller's own membership and returns (keyed by the token; another's order is a 404).
    ("POST", "/api/v1/membership"),
    ("POST", "/api/v1/membership/payment-method"),
    ("POST", "/api/v1/membership/cancel"),
    ("POST", "/api/v1/membership/resume"),
    ("POST", "/api/v1/returns"),
    # Seller routes: the seller check reads the caller's seller account from the database
    # (tests/security/test_api1_cross_seller_access.py).
    ("POST", "/api/v1/seller/products"),
    ("PATCH", "/api/v1/seller/products/{product_id}"),
    ("POST", "/api/v1/seller/products/{product_id}/stock"),
    ("POST", "/api/v1/seller/orders/{order_id}/ship"),
    ("POST", "/api/v1/checkout/quote"),  # writes nothing: a POST for its body
    # the caller's own address book and wishlist (another's address is a 404)
    ("POST", "/api/v1/me/addresses"),
    ("PATCH", "/api/v1/me/addresses/{address_id}"),
    ("DELETE", "/api/v1/me/addresses/{address_id}"),
    ("POST", "/api/v1/me/addresses/{address_id}/default"),
    ("PUT", "/api/v1/me/wishlist/{product_id}"),
    ("DELETE", "/api/v1/me/wishlist/{product_id}"),
}


def admin_operations(app) -> set[tuple[str, str]]:
    ops = set()
    for route in iter_routes(app):
        dependant = getattr(route, "dependant", None)
        if dependant is not None and get_admin in set(calls_of(dependant)):
            ops |= {(m, route.path) for m in route.methods if m != "HEAD"}
    return ops


def test_api5_admin_routes_are_found_and_documented(client):
    admin_ops = admin_operations(client.app)
    schema_ops = set(schema_operations(client.get("/openapi.json").json()))
    assert admin_ops <= schema_ops
    # Sanity: detection works on the routes known to be admin-only.
    assert {
        ("POST", "/api/v1/products"),
        ("POST", "/api/v1/categories"),
        ("POST", "/api/v1/inventory/{product_id}/adjustments"),
        ("POST", "/api/v1/admin/orders/{order_id}/ship"),
    } <= admin_ops
    # Anything under /admin/ must be guarded.
    assert {op for op in schema_ops if "/admin/" in op[1]} <= admin_ops


def test_api5_every_admin_route_refuses_anonymous_and_customers(client, customer, admin):
    admin_ops = sorted(admin_operations(client.app))
    for method, path in admin_ops:
        url = fill_path(path)
        anon = client.request(method, url, json={})
        assert anon.status_code == 401, (method, path, anon.status_code)
        assert anon.headers["content-type"] == "application/problem+json"
        as_customer = client.request(method, url, json={}, headers=customer.headers)
        assert as_customer.status_code == 403, (method, path, as_customer.status_code)
        as_admin = client.request(method, url, json={}, headers=admin.headers)
        assert as_admin.status_code not in (401, 403), (method, path)


def test_api5_unguarded_writes_are_known(client):
    schema_ops = set(schema_operations(client.get("/openapi.json").json()))
    writes = {op for op in schema_ops if op[0] in WRITE_METHODS}
    unguarded = writes - admin_operations(client.app)
    assert unguarded == CUSTOMER_WRITES


def test_api5_demoted_admin_loses_access_at_once(app, client, admin):
    from sqlalchemy import update

    from serving.db.tables import User

    assert admin.post("/api/v1/categories", json={"slug": "a", "name": "A"}).status_code == 201
    with app.state.components.db.session(write=True) as s:
        s.execute(update(User).where(User.email == admin.email).values(role="customer"))
        s.commit()
    # The token still says "admin"; the role is read from the database.
    assert admin.post("/api/v1/categories", json={"slug": "b", "name": "B"}).status_code == 403
