"""Tracking: results overdue under accepted ASPEC requests, agreements about to expire, and
the timeline of a dossier. Reminders go out once each (the ``reminder`` table)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from dossiers import outbox
from dossiers.db import utcnow
from dossiers.models import Agreement, AspecRequest, AuditEntry, Document, Dossier, Reminder, WebhookDelivery
from dossiers.vocab import AuditAction, InternalTopic

EXPIRY_NOTICE = timedelta(days=30)


def _remind_once(session_factory, kind: str, subject: str, offices: list[str], title: str, detail: dict) -> bool:
    try:
        with session_factory.begin() as s:
            s.add(Reminder(kind=kind, subject=subject))
            s.flush()
            for office in offices:
                outbox.emit(s, InternalTopic.TRACKING_REMINDER,
                            {"kind": kind, "office": office, "title": title, **detail})
    except IntegrityError:
        return False  # sent before
    return True


def overdue_requests(session_factory, *, days: int, now=None) -> int:
    """Accepted ASPEC requests whose first office has deposited no examination report for the
    relied-on application within ``days`` of the request: the second office is told, once."""
    now = now or utcnow()
    sent = 0
    with session_factory() as s:
        due = s.scalars(select(AspecRequest).where(AspecRequest.status == "accepted",
                                                   AspecRequest.created_at <= now - timedelta(days=days))).all()
        todo = []
        for r in due:
            has_er = s.scalars(select(Document.id).join(Dossier).where(
                Dossier.application_id == r.fo_application_id, Dossier.office_code == r.fo_office,
                Document.type == "ER", Dossier.received_at >= r.created_at).limit(1)).first()
            if has_er is None:
                todo.append((r.id, r.so_office, r.fo_office, r.fo_number))
    for rid, so, fo, number in todo:
        sent += _remind_once(session_factory, "aspec-overdue", rid, [so],
                             f"No examination report from {fo} for {number} within {days} days of ASPEC request",
                             {"aspec_request_id": rid, "fo_office": fo})
    return sent


def expiring_agreements(session_factory, *, now=None, notice: timedelta = EXPIRY_NOTICE) -> int:
    now = now or utcnow()
    with session_factory() as s:
        rows = [(a.id, a.name, a.valid_until, a.member_codes) for a in s.scalars(
            select(Agreement).where(Agreement.status == "active", Agreement.valid_until.is_not(None),
                                    Agreement.valid_until > now, Agreement.valid_until <= now + notice))]
    return sum(_remind_once(session_factory, "agreement-expiry", aid, members,
                            f"Agreement {name} expires on {until.date().isoformat()}",
                            {"agreement_id": aid, "valid_until": until.isoformat()})
               for aid, name, until, members in rows)


def timeline(session, dossier: Dossier) -> list[dict]:
    """Deposited, shared with (announced to), accessed by: the dossier's history, oldest first."""
    events = [{"at": dossier.received_at, "event": "deposited", "office": dossier.office_code}]
    for d in session.scalars(select(WebhookDelivery).where(WebhookDelivery.topic == "dossier.deposited")):
        if d.payload.get("data", {}).get("dossier_id") == dossier.id:
            events.append({"at": d.created_at, "event": "shared", "office": d.office_code,
                           "delivery": d.status})
    for e in session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.ACCESS_DECISION,
                                                      AuditEntry.subject == dossier.id,
                                                      AuditEntry.office_code != dossier.office_code)
                             .order_by(AuditEntry.seq)):
        events.append({"at": e.at, "event": "accessed" if e.outcome == "granted" else "access-denied",
                       "office": e.office_code, "reason": e.reason})
    return sorted(events, key=lambda x: x["at"])
