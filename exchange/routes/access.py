from __future__ import annotations

from fastapi import APIRouter, Query

from dossiers.registry import get_office

from ..access.gate import Gate
from ..access.principals import ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, require
from ..schemas import AccessExplanation

router = APIRouter(prefix="/v1/access", tags=["access"])


@router.get("/explain", response_model=AccessExplanation)
def explain(session: SessionDep, rid: RequestIdDep, dossier_id: str = Query(...), office: str = Query(...),
            principal: Principal = require(ADMIN)):
    """The decision for ``office`` on ``dossier_id`` now, with the rule and the reason per document."""
    get_office(session, office)
    d, decision = Gate.of(session, principal, rid).explain(dossier_id, office)
    return AccessExplanation(dossier_id=d.id, office=office, dossier_office=d.office_code,
                             decision="granted" if decision.visible else "denied", rule=decision.rule,
                             reason=decision.reason, documents=decision.as_detail())
