"""The same-run baseline for the serving benchmarks: a bare FastAPI JSON endpoint.

One route, a query parameter and a small JSON body, served by the same uvicorn flags as the
shop: what a request costs before any of storeloop's work, on this machine at this moment.
Benchmarks report their figures as a ratio to it, which survives a busy shared machine better
than the absolute figures do.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/json")
async def bare_json(q: str = "", limit: int = 20) -> dict:
    """A fixed small document echoing the query (no I/O, no work)."""
    return {"query": q, "limit": limit, "hits": [], "total": 0}
