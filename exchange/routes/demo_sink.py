"""A webhook receiver for the demo only (``exchange demo`` mounts it): it verifies each
delivery's signature as an office system would and keeps what arrived, so a newcomer sees
webhooks flow from the Celery worker without writing a receiver."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, Request

from crypto import webhooks
from crypto.errors import CryptoError

from ..deps import public

router = APIRouter(prefix="/_demo/webhooks", tags=["demo"], include_in_schema=False)


def _path(request: Request):
    return request.app.state.settings.home / "demo-webhooks.jsonl"


@router.post("/{office}", dependencies=[Depends(public)])
async def receive(office: str, request: Request) -> dict:
    body = await request.body()
    secrets = json.loads((request.app.state.settings.home / "demo.json").read_text()).get("webhook_secrets", {})
    try:
        webhooks.verify(body, dict(request.headers), secret=secrets.get(office, "whsec_" + "A" * 32))
        verified = True
    except CryptoError:
        verified = False
    record = {"office": office, "webhook_id": request.headers.get("webhook-id"), "verified": verified,
              "event": json.loads(body or b"{}")}
    with open(_path(request), "a") as f:
        f.write(json.dumps(record) + "\n")
    return {"ok": True}


@router.get("", dependencies=[Depends(public)])
def received(request: Request) -> list[dict]:
    path = _path(request)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()][-200:]
