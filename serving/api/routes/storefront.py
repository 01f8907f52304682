"""The web shop: one HTML shell for every page, plus its static files (no templates).

The storefront renders in the browser from the public JSON API, so the server's only job is to
hand out the same ``index.html`` for each page address (deep links and reloads work) and the
static assets under ``/static/``. Both get a strict Content-Security-Policy: scripts, styles,
images and API calls come from this origin only, so a page can never reach another host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, Response

from serving.core.errors import NotFound

WEB_ROOT = (Path(__file__).resolve().parents[3] / "storefront" / "web").resolve()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
}

#: Page addresses; each is the same shell, the browser-side router picks the view.
PAGES = (
    "/",
    "/search",
    "/c/{slug}",
    "/p/{product_id}",
    "/cart",
    "/checkout",
    "/checkout/done/{order_id}",
    "/orders",
    "/orders/{order_id}",
    "/account",
    "/signin",
    "/signup",
    "/ops",
)

router = APIRouter(tags=["storefront"], include_in_schema=False)


def _shell() -> Response:
    return FileResponse(
        WEB_ROOT / "index.html", media_type=STATIC_TYPES[".html"], headers=PAGE_HEADERS
    )


async def page() -> Response:
    """The HTML shell; path parameters are read by the browser, not here."""
    return _shell()


for _path in PAGES:
    router.add_api_route(_path, page, methods=["GET"], name=f"page:{_path}")


@router.get("/static/{file_path:path}", name="static")
async def static_file(file_path: str) -> Response:
    """A file under ``storefront/web``; anything outside it, hidden or unknown is a 404."""
    target = (WEB_ROOT / file_path).resolve()
    suffix = target.suffix.lower()
    if (
        not target.is_relative_to(WEB_ROOT)
        or any(part.startswith(".") for part in target.relative_to(WEB_ROOT).parts)
        or suffix not in STATIC_TYPES
        or not target.is_file()
    ):
        raise NotFound("File", file_path)
    return FileResponse(
        target,
        media_type=STATIC_TYPES[suffix],
        headers={**PAGE_HEADERS, "Cache-Control": "no-cache"},
    )


@router.get("/favicon.ico", name="favicon")
async def favicon() -> Response:
    return FileResponse(WEB_ROOT / "img" / "logo.svg", media_type=STATIC_TYPES[".svg"])
