"""Sharing agreements: members, document types, window, status. A change takes effect on the
very next request (nothing is cached in tokens) and is announced through the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, outbox, repository
from .errors import Conflict, InvalidRequest, NotFound
from .models import Agreement, AgreementMember, Office
from .schemas import DOCUMENT_TYPES
from .scope import Scope, require_scope
from .vocab import AuditAction, AuditOutcome, Topic

PROGRAMS = ("ASPEC", "CASE", "BILATERAL")
TRANSITIONS = {"suspend": ({"active"}, "suspended"), "resume": ({"suspended"}, "active"),
               "terminate": ({"active", "suspended"}, "terminated")}


def create(s: Session, *, name: str, program: str, members: list[str], document_types: list[str],
           valid_from: datetime, valid_until: datetime | None, require_corresponding: bool,
           share_unpublished: bool, actor: str, request_id: str | None = None) -> Agreement:
    errors = []
    members = sorted(set(members))
    if program not in PROGRAMS:
        errors.append({"pointer": "/program", "detail": f"program must be one of {', '.join(PROGRAMS)}"})
    if len(members) < 2:
        errors.append({"pointer": "/members", "detail": "an agreement needs at least two member offices"})
    known = set(s.scalars(select(Office.code).where(Office.code.in_(members))))
    unknown = [m for m in members if m not in known]
    if unknown:
        errors.append({"pointer": "/members", "detail": f"unknown offices: {', '.join(unknown)}"})
    bad_types = sorted(set(document_types) - set(DOCUMENT_TYPES))
    if bad_types or not document_types:
        errors.append({"pointer": "/document_types",
                       "detail": f"document types must be a non-empty subset of {', '.join(DOCUMENT_TYPES)}"
                       + (f"; unknown: {', '.join(bad_types)}" if bad_types else "")})
    if valid_until is not None and valid_until <= valid_from:
        errors.append({"pointer": "/valid_until", "detail": "the window ends before it starts"})
    if errors:
        raise InvalidRequest("; ".join(e["detail"] for e in errors), errors=errors)
    a = Agreement(id=str(uuid.uuid4()), name=name, program=program, document_types=sorted(set(document_types)),
                  valid_from=valid_from, valid_until=valid_until, status="active",
                  require_corresponding=require_corresponding, share_unpublished=share_unpublished)
    a.members = [AgreementMember(office_code=m) for m in members]
    s.add(a)
    s.flush()
    _changed(s, a, "created", actor, request_id)
    return a


def get(s: Session, agreement_id: str, *, scope: Scope) -> Agreement:
    """The agreement, if ``scope`` includes one of its members; otherwise it does not exist."""
    require_scope(scope)
    a = s.get(Agreement, agreement_id)
    if a is None or not scope.includes(*a.member_codes):
        raise NotFound(f"no agreement {agreement_id}")
    return a


def list_for(s: Session, scope: Scope) -> list[Agreement]:
    """Every agreement exchange-wide; an office's: those it is a member of."""
    require_scope(scope)
    if scope.is_everything:
        return list(s.scalars(select(Agreement).order_by(Agreement.created_at)))
    return sorted(repository.agreements_of(s, scope.code), key=lambda a: a.created_at)


def transition(s: Session, agreement_id: str, action: str, *, actor: str, request_id: str | None = None) -> Agreement:
    a = get(s, agreement_id, scope=Scope.everything())
    allowed, target = TRANSITIONS[action]
    if a.status not in allowed:
        raise Conflict(f"agreement {a.id} is {a.status}; it cannot be {target}")
    a.status = target
    s.flush()
    _changed(s, a, action, actor, request_id)
    return a


def _changed(s: Session, a: Agreement, change: str, actor: str, request_id: str | None) -> None:
    payload = {"agreement_id": a.id, "change": change, "status": a.status, "program": a.program,
               "members": a.member_codes, "document_types": a.document_types}
    outbox.emit(s, Topic.AGREEMENT_CHANGED, payload)
    audit.append(s, action=AuditAction(f"agreement.{change}"), outcome=AuditOutcome.OK, actor=actor, subject=a.id,
                 request_id=request_id,
                 detail=payload)
