"""Turning events into deliveries: webhooks (Standard Webhooks), the in-app inbox and e-mail.

``events.fan_out`` decides who hears of an event (for a deposit: every office the access
policy now lets see it) and writes one delivery row per subscription and one notification
per watch, in one transaction, deduplicated by unique keys on the event id: running it twice
changes nothing. Deliveries are then attempted by ``notify.deliver_webhook``; a delivery is
claimed with a lease before its HTTP call, so a redelivered task or a second dispatcher
cannot send it twice at once, and a worker killed mid-call leaves it to be retried when the
lease runs out, under the same ``webhook-id``.
"""

from __future__ import annotations

import email.message
import json
import logging
import random
import smtplib
import ssl
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from crypto import webhooks
from dossiers import audit, netguard, repository, signing_keys
from dossiers.access import decide_for
from dossiers.db import utcnow
from dossiers.errors import WebhookTargetRefused
from dossiers.models import (
    AgreementMember,
    Notification,
    Office,
    OutboxEvent,
    Watch,
    WebhookDelivery,
    WebhookSubscription,
)
from dossiers.scope import Scope
from dossiers.vocab import AuditAction, AuditOutcome, InternalTopic

from .app import celery_app
from .base import ExchangeTask, context

log = logging.getLogger(__name__)

HTTP_TIMEOUT = 10.0
# A delivery enqueued directly gets this long before the periodic dispatcher enqueues it again.
DISPATCH_GRACE = 15
_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: building one costs ~30 ms (the CA bundle)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls
LEASE_SECONDS = 60
MAX_RETRY_AFTER = 24 * 3600


def _insert(s):
    return pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- who hears of what ---------------------------------------------------------------------

def _subscriptions(s, office: str, ev: OutboxEvent) -> list[WebhookSubscription]:
    """Active subscriptions of ``office`` to the event's topic that existed when it happened."""
    subs = s.scalars(select(WebhookSubscription).where(WebhookSubscription.office_code == office,
                                                       WebhookSubscription.status == "active",
                                                       WebhookSubscription.created_at <= ev.created_at)).all()
    return [w for w in subs if not w.events or ev.topic in w.events]


def _route(s, ev: OutboxEvent) -> tuple[dict[str, dict], list[dict]]:
    """(payload per office for webhooks, notifications to write) for one event."""
    p, topic, now = ev.payload, ev.topic, utcnow()
    offices: dict[str, dict] = {}
    notes: list[dict] = []
    if topic == "dossier.deposited":
        d = repository.dossier(s, p["dossier_id"])
        if d is None:
            return {}, []
        family = {a.id for a in repository.family(s, d.application_id)}
        candidates = set(s.scalars(select(Office.code)))
        candidates.discard(d.office_code)
        for office in sorted(candidates):
            decision = decide_for(s, Scope.office(office), d, now)
            if not decision.visible:
                continue
            types = sorted({doc.type for doc in d.documents if doc.document_id in decision.visible_documents})
            offices[office] = {"dossier_id": d.id, "office": d.office_code, "document_types": types,
                               "application": {"office": d.office_code, "number": d.application.number},
                               "links": {"dossier": f"/v1/dossiers/{d.id}"}}
        watches = s.scalars(select(Watch).where(Watch.application_id.in_(family))).all()
        for w in watches:
            if w.scope == "application" and w.application_id != d.application_id:
                continue
            if w.office_code == d.office_code:
                visible_types = {doc.type for doc in d.documents}
            elif w.office_code in offices:
                visible_types = set(offices[w.office_code]["document_types"])
            else:
                continue
            if w.document_types and not visible_types & set(w.document_types):
                continue
            notes.append(dict(office_code=w.office_code, recipient=w.client_id, kind="watch", email=w.email,
                              title=f"{d.office_code} deposited {', '.join(sorted(visible_types))} for "
                                    f"{d.application.number}",
                              body={"dossier_id": d.id, "watch_id": w.id, "office": d.office_code,
                                    "application": d.application.number, "document_types": sorted(visible_types)}))
    elif topic == "dossier.accessed":
        offices[p["office"]] = {k: p[k] for k in ("dossier_id", "document_id", "accessed_by", "at") if k in p}
    elif topic == "agreement.changed":
        members = select(AgreementMember.office_code).where(AgreementMember.agreement_id == p["agreement_id"])
        for code in s.scalars(members):
            offices[code] = dict(p)
    elif topic == "aspec_request.decided":
        for code in {p["so_office"], p["fo_office"]}:
            offices[code] = dict(p)
    elif topic == "integrity.alert":
        notes.append(dict(office_code="", recipient="admin", kind="integrity", email=None,
                          title=f"Integrity check failed for blob {p.get('sha256', '')[:12]}…", body=dict(p)))
    elif topic == "webhook.dead":
        notes.append(dict(office_code=p["office"], recipient=f"office:{p['office']}", kind="webhook.dead", email=None,
                          title=f"Webhook delivery {p['delivery_id']} to {p['url']} failed for good", body=dict(p)))
    elif topic == "tracking.reminder":
        notes.append(dict(office_code=p["office"], recipient=f"office:{p['office']}", kind=p["kind"], email=None,
                          title=p["title"], body=dict(p)))
    return offices, notes


def fan_out_event(session_factory, event_id: str) -> tuple[list[str], list[str]]:
    """Write the deliveries and notifications of one event; return the ids to act on now."""
    with session_factory.begin() as s:
        ev = s.get(OutboxEvent, event_id)
        if ev is None:
            return [], []
        if ev.processed_at is None:  # a late task still counts: the event is no longer dead
            ev.processed_at, ev.dead_at = utcnow(), None
        offices, notes = _route(s, ev)
        insert = _insert(s)
        for office, data in offices.items():
            for sub in _subscriptions(s, office, ev):
                s.execute(insert(WebhookDelivery).values(
                    id=f"msg_{uuid.uuid4().hex}", subscription_id=sub.id, office_code=office, event_id=ev.id,
                    topic=ev.topic, payload={"type": ev.topic, "timestamp": _iso(ev.created_at), "data": data},
                    status="pending", attempts=0, next_attempt_at=utcnow(), created_at=utcnow(),
                ).on_conflict_do_nothing(index_elements=["subscription_id", "event_id"]))
        for n in notes:
            s.execute(insert(Notification).values(
                id=str(uuid.uuid4()), event_id=ev.id, created_at=utcnow(), **n,
            ).on_conflict_do_nothing(index_elements=["recipient", "event_id", "kind"]))
        deliveries = list(s.scalars(select(WebhookDelivery.id).where(WebhookDelivery.event_id == ev.id,
                                                                    WebhookDelivery.status == "pending")))
        mails = list(s.scalars(select(Notification.id).where(Notification.event_id == ev.id,
                                                            Notification.email.is_not(None),
                                                            Notification.emailed_at.is_(None))))
    return deliveries, mails


@celery_app.task(name="events.fan_out", base=ExchangeTask)
def fan_out(event_id: str) -> int:
    deliveries, mails = fan_out_event(context().session_factory, event_id)
    for d in deliveries:
        deliver_webhook.delay(d)
    for m in mails:
        send_email.delay(m)
    return len(deliveries)


# --- webhook delivery ------------------------------------------------------------------------

def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def next_delay(attempts: int, schedule: tuple[int, ...], retry_after: float | None) -> float | None:
    """Seconds until the next attempt after ``attempts`` failed ones, or None when exhausted.
    Jitter of ±10 % spreads retries; a receiver's ``Retry-After`` is honoured (up to a day)."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    delay = base * random.uniform(0.9, 1.1)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def deliver(session_factory, settings, delivery_id: str, *, lease: float = LEASE_SECONDS,
            http: httpx.Client | None = None) -> str:
    """Attempt one delivery; return its outcome ("delivered", "retry", "dead", "skipped")."""
    now = utcnow()
    with session_factory.begin() as s:
        claimed = s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.next_attempt_at <= now)
            .values(next_attempt_at=now + timedelta(seconds=lease))
        ).rowcount
        if not claimed:
            return "skipped"
        d = s.get(WebhookDelivery, delivery_id)
        sub = s.get(WebhookSubscription, d.subscription_id)
        private, _public = signing_keys.webhook_key(s)
        url, secret, active, payload, attempts = sub.url, sub.secret, sub.status == "active", d.payload, d.attempts
    if not active:
        return _finish(session_factory, delivery_id, "dead", None, "the subscription is disabled")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    status, error, retry_after = None, None, None
    try:
        approved = netguard.check_url(url, settings.webhook_allow_hosts)
        headers = webhooks.headers(delivery_id, int(time.time()), body, secret=secret, signing_key=private)
        headers.update({"content-type": "application/json", "user-agent": "patent-exchange-webhooks/1"})
        client = http or httpx.Client(transport=netguard.PinnedTransport(url, approved, verify=_tls_context()),
                                      timeout=HTTP_TIMEOUT, follow_redirects=False, trust_env=False)
        try:
            r = client.post(url, content=body, headers=headers)
        finally:
            if http is None:
                client.close()
        status = r.status_code
        retry_after = _retry_after(r.headers.get("retry-after"))
    except WebhookTargetRefused as exc:
        error = f"target refused: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
    if status is not None and 200 <= status < 300:
        return _finish(session_factory, delivery_id, "delivered", status, None)
    if status == 410:
        with session_factory.begin() as s:
            sub = s.get(WebhookSubscription, s.get(WebhookDelivery, delivery_id).subscription_id)
            sub.status, sub.disabled_reason = "disabled", "the receiver answered 410 Gone"
        return _finish(session_factory, delivery_id, "dead", status, "410 Gone: subscription disabled")
    delay = next_delay(attempts + 1, settings.webhook_retry_schedule, retry_after)
    if delay is None:
        return _finish(session_factory, delivery_id, "dead", status, error or f"HTTP {status}")
    with session_factory.begin() as s:
        d = s.get(WebhookDelivery, delivery_id)
        d.attempts += 1
        d.last_status_code, d.last_error = status, error or f"HTTP {status}"
        d.next_attempt_at = utcnow() + timedelta(seconds=delay)
    return f"retry:{delay:.3f}"


def _finish(session_factory, delivery_id: str, outcome: str, status: int | None, error: str | None) -> str:
    from dossiers import outbox

    with session_factory.begin() as s:
        d = s.get(WebhookDelivery, delivery_id)
        d.attempts += 1
        d.last_status_code, d.last_error = status, error
        if outcome == "delivered":
            d.status, d.delivered_at = "delivered", utcnow()
        else:
            d.status, d.dead_at = "dead", utcnow()
            sub = s.get(WebhookSubscription, d.subscription_id)
            outbox.emit(s, InternalTopic.WEBHOOK_DEAD, {"delivery_id": d.id, "office": d.office_code, "url": sub.url,
                                            "topic": d.topic, "error": error, "attempts": d.attempts})
            audit.append(s, action=AuditAction.WEBHOOK_DEAD, outcome=AuditOutcome.FAILED, office=d.office_code,
                         subject=d.id,
                         reason=error, detail={"url": sub.url, "attempts": d.attempts, "topic": d.topic})
    return outcome


@celery_app.task(name="notify.deliver_webhook", base=ExchangeTask)
def deliver_webhook(delivery_id: str) -> str:
    ctx = context()
    outcome = deliver(ctx.session_factory, ctx.settings, delivery_id, lease=ctx.settings.webhook_lease_seconds)
    if outcome.startswith("retry:"):
        delay = float(outcome.split(":", 1)[1])
        if delay <= 60:  # short waits as a countdown; long ones are the dispatcher's (visibility timeout)
            deliver_webhook.apply_async(args=[delivery_id], countdown=delay)
    return outcome


def due_deliveries(session_factory, limit: int = 500, grace: float = DISPATCH_GRACE) -> list[str]:
    """Deliveries overdue by ``grace``: those whose own task (enqueued at fan-out, or as a retry
    countdown) was lost or is stuck behind a long queue."""
    with session_factory() as s:
        return list(s.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.status == "pending",
                                             WebhookDelivery.next_attempt_at <= utcnow() - timedelta(seconds=grace))
            .order_by(WebhookDelivery.next_attempt_at).limit(limit)))


@celery_app.task(name="notify.dispatch_due", base=ExchangeTask)
def dispatch_due() -> int:
    ids = due_deliveries(context().session_factory)
    for d in ids:
        deliver_webhook.delay(d)
    return len(ids)


# --- e-mail ----------------------------------------------------------------------------------

def send_notification_email(session_factory, settings, notification_id: str) -> bool:
    if not settings.smtp_url:
        return False
    with session_factory.begin() as s:
        claimed = s.execute(update(Notification).where(Notification.id == notification_id,
                                                       Notification.emailed_at.is_(None))
                            .values(emailed_at=utcnow())).rowcount
        if not claimed:
            return False
        n = s.get(Notification, notification_id)
        to, title, body = n.email, n.title, n.body
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.mail_from, to, f"[exchange] {title}"
    msg["Message-ID"] = f"<{notification_id}@exchange>"
    msg.set_content(f"{title}\n\n" + "\n".join(f"{k}: {v}" for k, v in body.items())
                    + "\n\nOpen the exchange to read the documents your office may see.")
    parts = urlsplit(settings.smtp_url)
    try:
        with smtplib.SMTP(parts.hostname, parts.port or 25, timeout=10) as smtp:
            if parts.username:
                smtp.login(parts.username, parts.password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException):
        with session_factory.begin() as s:  # give it back for a later try
            s.execute(update(Notification).where(Notification.id == notification_id).values(emailed_at=None))
        raise
    return True


@celery_app.task(name="notify.send_email", base=ExchangeTask, bind=True, max_retries=8)
def send_email(self, notification_id: str) -> bool:
    ctx = context()
    try:
        return send_notification_email(ctx.session_factory, ctx.settings, notification_id)
    except (OSError, smtplib.SMTPException) as exc:
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries)) from exc
