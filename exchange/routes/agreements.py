from __future__ import annotations

from fastapi import APIRouter

from dossiers import agreements

from ..access.principals import ADMIN, DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, ScopeDep, SessionDep, require
from ..schemas import AgreementCreate, AgreementRead

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])
MEMBERS = (ADMIN, OFFICE_ADMIN, EXAMINER, DEPOSITOR)


def _read(a) -> AgreementRead:
    return AgreementRead(id=a.id, name=a.name, program=a.program, members=a.member_codes,
                         document_types=a.document_types, valid_from=a.valid_from, valid_until=a.valid_until,
                         status=a.status, require_corresponding=a.require_corresponding,
                         share_unpublished=a.share_unpublished, created_at=a.created_at, updated_at=a.updated_at)


@router.post("", status_code=201, response_model=AgreementRead)
def create(body: AgreementCreate, session: SessionDep, rid: RequestIdDep, principal: Principal = require(ADMIN)):
    return _read(agreements.create(session, **body.model_dump(), actor=principal.client_id, request_id=rid))


@router.get("", response_model=list[AgreementRead])
def list_agreements(session: SessionDep, scope: ScopeDep, principal: Principal = require(*MEMBERS)):
    """All agreements for the exchange's admin; an office's clients see those it is a member of."""
    return [_read(a) for a in agreements.list_for(session, scope)]


@router.get("/{agreement_id}", response_model=AgreementRead)
def get(agreement_id: str, session: SessionDep, scope: ScopeDep, principal: Principal = require(*MEMBERS)):
    return _read(agreements.get(session, agreement_id, scope=scope))


def _transition(action: str):
    def handler(agreement_id: str, session: SessionDep, rid: RequestIdDep, principal: Principal = require(ADMIN)):
        return _read(agreements.transition(session, agreement_id, action, actor=principal.client_id, request_id=rid))

    handler.__name__ = f"{action}_agreement"
    handler.__doc__ = f"{action.capitalize()} the agreement; effective on the very next request."
    return handler


for _action in ("suspend", "resume", "terminate"):
    router.add_api_route(f"/{{agreement_id}}/{_action}", _transition(_action), methods=["POST"],
                         response_model=AgreementRead)
