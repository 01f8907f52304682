"""API docs (Swagger UI at ``/docs``, Redoc at ``/redoc``) served from a pinned package.

FastAPI's own pages load Swagger UI from a CDN at a floating version with no integrity hash, so
they are blank offline and would run third-party script on the origin where the storefront
keeps its token. The assets here come from the pinned ``fastapi-offline`` wheel (Swagger UI 5,
Redoc 2), the start-up script is a file rather than inline code, and both pages carry a CSP that
allows this origin only. Swagger UI and Redoc set element styles at run time, so these two pages
(unlike the storefront) allow inline styles; never inline script.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import FileResponse, HTMLResponse, Response

from serving.core.errors import NotFound

ASSET_DIR = Path(str(files("fastapi_offline") / "static"))
#: name served under /docs/assets/ -> media type; nothing else in the package is reachable.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; worker-src 'self' blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

#: Start-up code of both pages, served as files so the CSP needs no 'unsafe-inline' script.
INIT_SCRIPTS = {
    "swagger-init.js": (
        "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui',"
        " deepLinking: true, showExtensions: true, layout: 'BaseLayout',"
        " presets: [SwaggerUIBundle.presets.apis]});\n"
    ),
    "redoc-init.js": (
        "Redoc.init('/openapi.json', {hideDownloadButton: false},"
        " document.getElementById('redoc'));\n"
    ),
}

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>storeloop API - {title}</title>
<link rel="icon" href="/docs/assets/favicon.png">{css}
</head><body><div id="{root}"></div>
<script src="/docs/assets/{bundle}"></script>
<script src="/docs/assets/{init}"></script>
</body></html>
"""

router = APIRouter(include_in_schema=False)


@router.api_route("/docs", methods=["GET", "HEAD"])
async def swagger_ui() -> HTMLResponse:
    """Swagger UI over this app's ``/openapi.json``; works with no network at all."""
    html = PAGE.format(
        title="Swagger UI",
        css='\n<link rel="stylesheet" href="/docs/assets/swagger-ui.css">',
        root="swagger-ui",
        bundle="swagger-ui-bundle.js",
        init="swagger-init.js",
    )
    return HTMLResponse(html, headers=HEADERS)


@router.api_route("/redoc", methods=["GET", "HEAD"])
async def redoc() -> HTMLResponse:
    """The same schema as one long reference page (Redoc)."""
    html = PAGE.format(
        title="Redoc", css="", root="redoc", bundle="redoc.standalone.js", init="redoc-init.js"
    )
    return HTMLResponse(html, headers=HEADERS)


@router.api_route("/docs/assets/{name}", methods=["GET", "HEAD"])
async def docs_asset(name: str) -> Response:
    """One of the named docs assets; any other name is a 404."""
    if name in INIT_SCRIPTS:
        media_type = ASSETS["swagger-ui-bundle.js"]
        return Response(INIT_SCRIPTS[name], media_type=media_type, headers=HEADERS)
    if name not in ASSETS:
        raise NotFound("File", name)
    return FileResponse(ASSET_DIR / name, media_type=ASSETS[name], headers=HEADERS)
