"""A webhook receiver for the demo only (``exchange demo`` mounts it): it verifies each
delivery's signature as an office system would and keeps what arrived, so a newcomer sees
webhooks flow from the Celery worker without writing a receiver.

What arrived is the demo's administrator's to read (its API client, or the administrator signed
in to the web pages: the banner links here). Deliveries cannot carry the administrator's
credentials, so the receiver stays open to them, but keeps only those signed with the secret of
an office the demo subscribed: anything else is refused and nothing of it is written."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request

from crypto import webhooks
from dossiers.errors import Forbidden, InvalidRequest, NotFound

from ..access.principals import ADMIN, Principal
from ..deps import SessionDep, current_principal, public
from ..web.auth import COOKIE, mark_web, web_user

router = APIRouter(prefix="/_demo/webhooks", tags=["demo"], include_in_schema=False)
MAX_DELIVERY = 1 << 20  # the exchange's events are a few KiB


def _path(request: Request):
    return request.app.state.settings.home / "demo-webhooks.jsonl"


def _secrets(request: Request) -> dict:
    try:
        creds = json.loads((request.app.state.settings.home / "demo.json").read_text())
    except (OSError, ValueError):
        return {}
    found = creds.get("webhook_secrets") if isinstance(creds, dict) else None
    return found if isinstance(found, dict) else {}


def demo_admin(request: Request, session: SessionDep) -> Principal:
    """The exchange's administrator: a bearer token of an admin client, or, in the browser, the
    administrator's web session (without one, the browser is sent to sign in)."""
    if request.headers.get("authorization") or not (
            request.cookies.get(COOKIE) or "text/html" in request.headers.get("accept", "")):
        principal = current_principal(request)
    else:
        mark_web(request)  # refusals as pages, and the sign-in redirect
        principal = web_user(ADMIN).dependency(request, session).principal
    if not principal.is_admin:
        raise Forbidden("the webhooks the demo received are for the exchange's administrator")
    return principal


demo_admin.__access__ = ("roles", (ADMIN,))  # type: ignore[attr-defined]


@router.post("/{office}", dependencies=[Depends(public)])
async def receive(office: str, request: Request) -> dict:
    secret = _secrets(request).get(office)
    if not isinstance(secret, str):
        raise NotFound(f"the demo receives no webhooks for office {office}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_DELIVERY:
        raise InvalidRequest(f"a delivery is at most {MAX_DELIVERY} bytes")
    body = await request.body()
    if len(body) > MAX_DELIVERY:
        raise InvalidRequest(f"a delivery is at most {MAX_DELIVERY} bytes")
    webhooks.verify(body, dict(request.headers), secret=secret)  # CryptoError: a 422 problem, nothing kept
    try:
        event = json.loads(body)
    except ValueError:
        raise InvalidRequest("a delivery's body is a JSON event") from None
    record = {"office": office, "webhook_id": request.headers.get("webhook-id"), "verified": True, "event": event}
    with open(_path(request), "a") as f:
        f.write(json.dumps(record) + "\n")
    return {"ok": True}


@router.get("", dependencies=[Depends(demo_admin)])
def received(request: Request) -> list[dict]:
    path = _path(request)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()][-200:]
