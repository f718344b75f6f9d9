from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from dossiers import audit
from dossiers.vocab import AuditAction, AuditOutcome

from .. import pagination
from ..access.principals import ADMIN, OFFICE_ADMIN, Principal
from ..deps import ScopeDep, SessionDep, office_not_found, require
from ..schemas import AuditEntryRead, Page

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def audit_office(scope: ScopeDep, office: str | None = None,
                 principal: Principal = require(ADMIN, OFFICE_ADMIN)) -> str | None:
    """The office named by ``?office=``, if any, within the caller's scope: the exchange's admin
    any (all when none is named); an office-admin its own, and another office reads as one that
    does not exist."""
    if office and not scope.includes(office):
        raise office_not_found(office)
    return office


@router.get("", response_model=Page)
def list_audit(session: SessionDep, scope: ScopeDep, office: Annotated[str | None, Depends(audit_office)],
               cursor: str | None = None, limit: int = Query(50, ge=1, le=pagination.MAX_LIMIT),
               action: AuditAction | None = None, outcome: AuditOutcome | None = None):
    """The audit log, newest first. An office-admin sees its own office's entries only."""
    after = pagination.decode(cursor, int)
    rows = audit.page(session, scope=scope, office=office, action=action, outcome=outcome,
                      before_seq=after[0] if after else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = pagination.encode(rows[-1].seq) if more else None
    return Page(items=[AuditEntryRead.model_validate(r) for r in rows], next_cursor=nxt)
