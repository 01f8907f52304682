"""Includes every router; the only place that knows the full list."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

#: Route modules under ``serving.api.routes``; optional ones are skipped until they exist.
ROUTE_MODULES = (
    "health",
    "auth",
    "me",
    "categories",
    "products",
    "inventory",
    "reviews",
    "events",
    "cart",
    "orders",
    "payments",
    "recommendations",
    "search",
    "admin",
    "storefront",
)

api_router = APIRouter()
for _name in ROUTE_MODULES:
    try:
        _module = importlib.import_module(f"serving.api.routes.{_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"serving.api.routes.{_name}":
            raise
        continue
    api_router.include_router(_module.router)
