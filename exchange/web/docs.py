"""The API reference pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), served with their
scripts, styles and icon from the exchange itself (``static/vendor``, see its README), never
from a third-party host: an office's browser talks to the exchange only, and a CDN cannot
change what runs next to an office-admin's bearer token. The pages forbid framing, and their
Content-Security-Policy lets nothing else load (ReDoc's "API docs by Redocly" logo, for
one, would come from cdn.redoc.ly; Swagger UI's validator badge from validator.swagger.io)."""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from ..deps import public

VENDOR = "/static/vendor"
ASSETS = {
    "swagger_js": f"{VENDOR}/swagger-ui-bundle.js",
    "swagger_css": f"{VENDOR}/swagger-ui.css",
    "redoc_js": f"{VENDOR}/redoc.standalone.js",
    "favicon": f"{VENDOR}/favicon.png",
}
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

router = APIRouter(include_in_schema=False, dependencies=[Depends(public)])


def _csp(html: str) -> str:
    # The page's own inline script (Swagger UI's start-up) by its hash; nothing inline else.
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
                      for s in _INLINE_SCRIPT.findall(html))
    return ("default-src 'self'; "
            f"script-src 'self'{' ' + hashes if hashes else ''}; "
            # Both UIs style elements from script (ReDoc through styled-components).
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _page(response: HTMLResponse) -> HTMLResponse:
    html = bytes(response.body).decode()
    return HTMLResponse(html, headers={"Content-Security-Policy": _csp(html), "X-Frame-Options": "DENY",
                                       "Cache-Control": "no-cache"})


def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return _page(get_swagger_ui_html(
        openapi_url=root + app.openapi_url, title=f"{app.title} - Swagger UI",
        swagger_js_url=root + ASSETS["swagger_js"], swagger_css_url=root + ASSETS["swagger_css"],
        swagger_favicon_url=root + ASSETS["favicon"],
        # No validator badge: it would send the schema's URL to validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None}))


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    root, app = _root(request), request.app
    return _page(get_redoc_html(
        openapi_url=root + app.openapi_url, title=f"{app.title} - ReDoc", redoc_js_url=root + ASSETS["redoc_js"],
        redoc_favicon_url=root + ASSETS["favicon"], with_google_fonts=False))
