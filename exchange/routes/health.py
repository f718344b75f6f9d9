from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ..deps import public
from ..readiness import check_all

router = APIRouter(tags=["health"])


@router.get("/healthz", dependencies=[Depends(public)])
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", dependencies=[Depends(public)])
def readyz(request: Request):
    checks = check_all(request.app.state)
    down = [name for name, c in checks.items() if c["status"] != "ok"]
    body: dict[str, object] = {"status": "ok" if not down else "unavailable", "checks": checks}
    if down:
        body.update({"type": "/problems/not-ready", "title": "Not ready", "status": 503, "code": "not-ready",
                     "detail": "not answering: " + ", ".join(down)})
        return JSONResponse(body, status_code=503, media_type="application/problem+json")
    return body
