"""Templates and the small helpers every page uses."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def page(request: Request, name: str, status_code: int = 200, **context):
    ctx = getattr(request.state, "web_context", None)
    context.setdefault("ctx", ctx)
    context.setdefault("unread", getattr(request.state, "unread", 0))
    headers = {"Cache-Control": "no-store", "Content-Security-Policy":
               "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
               "frame-src 'self'; object-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'"}
    return templates.TemplateResponse(request, name, context, status_code=status_code, headers=headers)
