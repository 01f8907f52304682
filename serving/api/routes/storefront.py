"""The web shop: one HTML shell for every page, plus its static files (no templates).

The storefront renders in the browser from the public JSON API, so the server's only job is to
hand out the same ``index.html`` for each page address (deep links and reloads work) and the
static assets under ``/static/``. Both get a strict Content-Security-Policy: scripts, styles,
images and API calls come from this origin only, so a page can never reach another host.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from serving.components import components_of
from serving.core.errors import NotFound
from serving.services.shop import product_images

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
    "/orders/{order_id}/return",
    "/returns",
    "/membership",
    "/account",
    "/account/addresses",
    "/wishlist",
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
    router.add_api_route(_path, page, methods=["GET", "HEAD"], name=f"page:{_path}")


#: Product pictures change only when a title, brand or category does: an hour is safe.
IMAGE_HEADERS = {**PAGE_HEADERS, "Cache-Control": "public, max-age=3600"}


def _load_image_source(db, sku: str) -> product_images.ImageSource | None:
    with db.engine.connect() as conn:
        return product_images.load_source(conn, sku)


@router.api_route("/static/placeholder/{sku}.svg", methods=["GET", "HEAD"], name="product_image")
async def product_image(request: Request, sku: str) -> Response:
    """The drawn picture of product ``sku`` (category shape, brand colour, title); 404 if none.

    A real 404 keeps the storefront's own fallback tile working for unknown images.
    """
    source = await run_in_threadpool(_load_image_source, components_of(request).db, sku)
    if source is None:
        raise NotFound("Image", sku)
    return Response(
        product_images.render_svg(source), media_type=STATIC_TYPES[".svg"], headers=IMAGE_HEADERS
    )


@router.api_route("/static/{file_path:path}", methods=["GET", "HEAD"], name="static")
async def static_file(file_path: str) -> Response:
    """A file under ``storefront/web``; anything outside it, hidden or unknown is a 404.

    A name the file system cannot even look up (a NUL byte, a name past NAME_MAX) is just as
    unknown: the OS error it raises must not become a 500.
    """
    try:
        target = (WEB_ROOT / file_path).resolve()
        found = (
            target.is_relative_to(WEB_ROOT)
            and not any(part.startswith(".") for part in target.relative_to(WEB_ROOT).parts)
            and target.suffix.lower() in STATIC_TYPES
            and target.is_file()
        )
    except (OSError, ValueError):
        found = False
    if not found:
        shown = file_path if len(file_path) <= 200 else file_path[:200] + "…"
        raise NotFound("File", shown.replace("\x00", "\\0"))
    suffix = target.suffix.lower()
    return FileResponse(
        target,
        media_type=STATIC_TYPES[suffix],
        headers={**PAGE_HEADERS, "Cache-Control": "no-cache"},
    )


@router.get("/favicon.ico", name="favicon")
async def favicon() -> Response:
    return FileResponse(WEB_ROOT / "img" / "logo.svg", media_type=STATIC_TYPES[".svg"])
