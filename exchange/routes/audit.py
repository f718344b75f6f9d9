from __future__ import annotations

from fastapi import APIRouter, Query
from dossiers import audit

from .. import pagination
from ..access.principals import ADMIN, OFFICE_ADMIN, Principal
from ..deps import SessionDep, require
from ..schemas import AuditEntryRead, Page

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", response_model=Page)
def list_audit(session: SessionDep, cursor: str | None = None,
               limit: int = Query(50, ge=1, le=pagination.MAX_LIMIT),
               action: str | None = None, outcome: str | None = None, office: str | None = None,
               principal: Principal = require(ADMIN, OFFICE_ADMIN)):
    """The audit log, newest first. An office-admin sees its own office's entries only."""
    after = pagination.decode(cursor, 1)
    rows = audit.page(session, office=office if principal.is_admin else principal.office,
                      all_offices=principal.is_admin and not office, action=action, outcome=outcome,
                      before_seq=int(after[0]) if after else None, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = pagination.encode(rows[-1].seq) if more else None
    return Page(items=[AuditEntryRead.model_validate(r) for r in rows], next_cursor=nxt)
