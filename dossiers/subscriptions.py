"""Webhook subscriptions, delivery log and redelivery; watches and the inbox (services:
flush, never commit)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from crypto import webhooks
from dossiers import audit, repository
from dossiers.db import utcnow
from dossiers.errors import InvalidRequest, NotFound, WebhookTargetRefused, WebhookTargetUnresolvable
from dossiers.models import Notification, Office, Watch, WebhookDelivery, WebhookSubscription
from dossiers.schemas import DOCUMENT_TYPES
from dossiers.vocab import AuditAction, AuditOutcome, Topic

from . import netguard

TOPICS = tuple(Topic)


def subscribe(s: Session, office: str, *, url: str, events: Sequence[str], description: str | None,
              allow: tuple[str, ...], actor: str, request_id: str | None = None) -> WebhookSubscription:
    if s.get(Office, office) is None:
        raise NotFound(f"no office {office}")
    bad = sorted(set(events) - set(TOPICS))
    if bad:
        raise InvalidRequest(f"unknown events: {', '.join(bad)}; choose from {', '.join(TOPICS)}")
    try:
        netguard.check_url(url, allow)
    except WebhookTargetUnresolvable as exc:
        # Registration answers every refusal alike; only a delivery may retry an unresolvable host.
        raise WebhookTargetRefused(exc.url, exc.reason) from None
    sub = WebhookSubscription(id=str(uuid.uuid4()), office_code=office, url=url, events=sorted(set(events)),
                              secret=webhooks.new_secret(), description=description, created_by=actor)
    s.add(sub)
    s.flush()
    audit.append(s, action=AuditAction.WEBHOOK_SUBSCRIBE, outcome=AuditOutcome.OK,
                 actor=actor, office=office, subject=sub.id,
                 detail={"url": url, "events": sub.events}, request_id=request_id)
    return sub


def get_subscription(s: Session, office: str, sub_id: str) -> WebhookSubscription:
    sub = s.get(WebhookSubscription, sub_id)
    if sub is None or sub.office_code != office:
        raise NotFound(f"no webhook {sub_id}")
    return sub


def list_subscriptions(s: Session, office: str) -> list[WebhookSubscription]:
    return list(s.scalars(select(WebhookSubscription).where(WebhookSubscription.office_code == office)
                          .order_by(WebhookSubscription.created_at)))


def set_status(s: Session, office: str, sub_id: str, status: str, *, actor: str) -> WebhookSubscription:
    sub = get_subscription(s, office, sub_id)
    sub.status, sub.disabled_reason = status, (None if status == "active" else f"{status} by {actor}")
    s.flush()
    audit.append(s, action=AuditAction(f"webhook.{status}"), outcome=AuditOutcome.OK, actor=actor, office=office,
                 subject=sub.id)
    return sub


def deliveries(s: Session, office: str, *, subscription_id: str | None = None, status: str | None = None,
               limit: int = 100) -> list[WebhookDelivery]:
    q = select(WebhookDelivery).where(WebhookDelivery.office_code == office)
    if subscription_id:
        get_subscription(s, office, subscription_id)
        q = q.where(WebhookDelivery.subscription_id == subscription_id)
    if status:
        q = q.where(WebhookDelivery.status == status)
    return list(s.scalars(q.order_by(WebhookDelivery.created_at.desc()).limit(limit)))


def redeliver(s: Session, office: str, delivery_id: str, *, actor: str) -> WebhookDelivery:
    """Another round for a delivery (dead or delivered), under the same ``webhook-id``."""
    d = s.get(WebhookDelivery, delivery_id)
    if d is None or d.office_code != office:
        raise NotFound(f"no delivery {delivery_id}")
    d.status, d.dead_at, d.next_attempt_at = "pending", None, utcnow()
    s.flush()
    audit.append(s, action=AuditAction.WEBHOOK_REDELIVER, outcome=AuditOutcome.OK,
                 actor=actor, office=office, subject=d.id)
    return d


# --- watches and the inbox ------------------------------------------------------------------

def watch(s: Session, *, office: str, client_id: str, application, scope: str, document_types: Sequence[str],
          email: str | None) -> Watch:
    bad = sorted(set(document_types) - set(DOCUMENT_TYPES))
    if bad:
        raise InvalidRequest(f"unknown document types: {', '.join(bad)}")
    if scope not in ("application", "family"):
        raise InvalidRequest("scope is 'application' or 'family'")
    w = Watch(id=str(uuid.uuid4()), office_code=office, client_id=client_id, application_id=application.id,
              scope=scope, document_types=sorted(set(document_types)), email=email)
    s.add(w)
    s.flush()
    return w


def watches(s: Session, client_id: str) -> list[Watch]:
    return list(s.scalars(select(Watch).where(Watch.client_id == client_id).order_by(Watch.created_at)))


def unwatch(s: Session, client_id: str, watch_id: str) -> None:
    w = s.get(Watch, watch_id)
    if w is None or w.client_id != client_id:
        raise NotFound(f"no watch {watch_id}")
    s.delete(w)
    s.flush()


def recipients_of(client_id: str, office: str | None, roles: frozenset[str]) -> list[str]:
    out = [client_id]
    if "admin" in roles:
        out.append("admin")
    if office and "office-admin" in roles:
        out.append(f"office:{office}")
    return out


def inbox(s: Session, recipients: list[str], *, unread: bool = False, limit: int = 100) -> list[Notification]:
    q = select(Notification).where(Notification.recipient.in_(recipients))
    if unread:
        q = q.where(Notification.read_at.is_(None))
    return list(s.scalars(q.order_by(Notification.created_at.desc()).limit(limit)))


def mark_read(s: Session, recipients: list[str], notification_id: str) -> Notification:
    n = s.get(Notification, notification_id)
    if n is None or n.recipient not in recipients:
        raise NotFound(f"no notification {notification_id}")
    n.read_at = n.read_at or utcnow()
    s.flush()
    return n


def find_application(s: Session, office: str, number: str):
    app = repository.application(s, office, number)
    if app is None:
        raise NotFound(f"no application {office} {number}")
    return app
