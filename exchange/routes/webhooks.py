from __future__ import annotations

from datetime import datetime
from functools import partial

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dossiers import subscriptions
from dossiers.aftercommit import after_commit
from dossiers.vocab import Topic

from ..access.principals import OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, SettingsDep, public, require_office

router = APIRouter(tags=["webhooks"])


class WebhookCreate(BaseModel):
    url: str = Field(min_length=8, max_length=2000)
    events: list[Topic] = Field(default_factory=list, description="empty: every event")
    description: str | None = Field(default=None, max_length=200)


class WebhookRead(BaseModel):
    id: str
    office: str
    url: str
    events: list[Topic]
    description: str | None
    status: str
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = None


class DeliveryRead(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    topic: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    dead_at: datetime | None


def _read(sub, secret: bool = False) -> WebhookRead:
    return WebhookRead(id=sub.id, office=sub.office_code, url=sub.url, events=sub.events,
                       description=sub.description, status=sub.status, disabled_reason=sub.disabled_reason,
                       created_at=sub.created_at, secret=sub.secret if secret else None)


def _delivery(d) -> DeliveryRead:
    return DeliveryRead(id=d.id, subscription_id=d.subscription_id, event_id=d.event_id, topic=d.topic,
                        status=d.status, attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                        last_status_code=d.last_status_code, last_error=d.last_error, created_at=d.created_at,
                        delivered_at=d.delivered_at, dead_at=d.dead_at)


OfficeAdmin = require_office(OFFICE_ADMIN)


@router.post("/v1/offices/{code}/webhooks", status_code=201, response_model=WebhookRead)
def subscribe(code: str, body: WebhookCreate, session: SessionDep, settings: SettingsDep, rid: RequestIdDep,
              principal: Principal = OfficeAdmin):
    """Subscribe a URL to events. The ``secret`` (``whsec_…``) is shown once: deliveries carry
    ``webhook-signature: v1,<HMAC-SHA256>`` with it, and ``v1a,<Ed25519>`` with the exchange's
    key (``GET /v1/webhooks/public-key``). Loopback, link-local and private targets are refused
    unless ``EXCHANGE_WEBHOOK_ALLOW_HOSTS`` allows them."""
    sub = subscriptions.subscribe(session, code, url=body.url, events=body.events, description=body.description,
                                  allow=settings.webhook_allow_hosts, actor=principal.client_id, request_id=rid)
    return _read(sub, secret=True)


@router.get("/v1/offices/{code}/webhooks", response_model=list[WebhookRead], dependencies=[OfficeAdmin])
def list_webhooks(code: str, session: SessionDep):
    return [_read(s) for s in subscriptions.list_subscriptions(session, code)]


@router.delete("/v1/offices/{code}/webhooks/{webhook_id}", status_code=204)
def unsubscribe(code: str, webhook_id: str, session: SessionDep, principal: Principal = OfficeAdmin):
    subscriptions.set_status(session, code, webhook_id, "deleted", actor=principal.client_id)
    return Response(status_code=204)


@router.post("/v1/offices/{code}/webhooks/{webhook_id}/enable", response_model=WebhookRead)
def enable(code: str, webhook_id: str, session: SessionDep, principal: Principal = OfficeAdmin):
    return _read(subscriptions.set_status(session, code, webhook_id, "active", actor=principal.client_id))


@router.get("/v1/offices/{code}/deliveries", response_model=list[DeliveryRead], dependencies=[OfficeAdmin])
def delivery_log(code: str, session: SessionDep, status: str | None = None, webhook_id: str | None = None):
    """The office's delivery log, newest first; ``status=dead`` lists the dead letters."""
    return [_delivery(d) for d in subscriptions.deliveries(session, code, subscription_id=webhook_id, status=status)]


@router.post("/v1/offices/{code}/deliveries/{delivery_id}/redeliver", response_model=DeliveryRead)
def redeliver(code: str, delivery_id: str, request: Request, session: SessionDep,
              principal: Principal = OfficeAdmin):
    d = subscriptions.redeliver(session, code, delivery_id, actor=principal.client_id)
    after_commit(session, partial(request.app.state.relay.enqueue, "notify.deliver_webhook", [d.id]))
    return _delivery(d)


@router.get("/v1/webhooks/public-key", dependencies=[Depends(public)])
def webhook_public_key(session: SessionDep) -> dict:
    """The exchange's Ed25519 key for ``v1a`` webhook signatures (Standard Webhooks ``whpk_``)."""
    from dossiers import signing_keys

    _private, public_key = signing_keys.webhook_key(session)
    return {"public_key": public_key, "scheme": "v1a"}
