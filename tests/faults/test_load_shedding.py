"""Drill: more concurrent requests than a worker admits are shed fast, with Retry-After.

The middleware is driven with requests held open inside the app (an event they wait on), so the
test decides exactly how many are in flight; no timing is involved.
"""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.middleware.load_shed import LoadShedMiddleware


def test_requests_over_the_cap_get_503_with_retry_after_and_the_rest_complete():
    release = asyncio.Event()
    entered = 0

    async def slow_app(scope, receive, send):
        nonlocal entered
        entered += 1
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    shed = LoadShedMiddleware(slow_app, max_in_flight=3, retry_after=2)

    async def drill():
        transport = httpx.ASGITransport(app=shed)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            admitted = [asyncio.create_task(c.get("/api/v1/x")) for _ in range(3)]
            while entered < 3:
                await asyncio.sleep(0)
            refused = await c.get("/api/v1/x")
            probe = asyncio.create_task(c.get("/healthz"))  # probes are never shed
            while entered < 4:
                await asyncio.sleep(0)
            release.set()
            done = await asyncio.gather(*admitted, probe)
            after = await c.get("/api/v1/x")  # recovered: capacity is free again
            return refused, done, after

    refused, done, after = asyncio.run(drill())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "2"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 503
    assert [r.status_code for r in done] == [200, 200, 200, 200]
    assert after.status_code == 200
    assert shed.in_flight == 0


def test_app_registers_the_shedder_only_when_configured(settings):
    on = settings.model_copy(update={"max_in_flight_requests": 5})
    with TestClient(create_app(on)) as c:
        assert c.get("/api/v1/categories").status_code == 200
    assert any(m.cls is LoadShedMiddleware for m in create_app(on).user_middleware)
    assert not any(m.cls is LoadShedMiddleware for m in create_app(settings).user_middleware)
