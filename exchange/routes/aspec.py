from __future__ import annotations

from fastapi import APIRouter

from dossiers import aspec

from ..access.principals import ADMIN, DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, ScopeDep, SessionDep, require
from ..schemas import AspecRequestCreate, AspecRequestRead

router = APIRouter(prefix="/v1/aspec-requests", tags=["aspec"])


def _read(r) -> AspecRequestRead:
    return AspecRequestRead(
        id=r.id, route=r.route, status=r.status, reasons=r.reasons, basis=r.basis,
        application={"office": r.so_office, "number": r.so_application.number},
        first_office_application={"office": r.fo_office, "number": r.fo_number},
        relied_documents=r.relied_documents, claim_correspondence=r.claim_correspondence,
        created_at=r.created_at, decided_at=r.decided_at, withdrawn_at=r.withdrawn_at,
    )


@router.post("", status_code=201, response_model=AspecRequestRead)
def file_request(body: AspecRequestCreate, session: SessionDep, rid: RequestIdDep,
                 principal: Principal = require(DEPOSITOR, EXAMINER)):
    req = aspec.file_request(
        session, so_office=principal.scope.code, route=body.route, application=body.application.model_dump(),
        first_office_application=body.first_office_application.model_dump(),
        relied_documents=[r.model_dump() for r in body.relied_documents],
        claim_correspondence=[c.model_dump() for c in body.claim_correspondence] if body.claim_correspondence else None,
        requested_on=body.requested_on, actor=principal.client_id, request_id=rid,
    )
    return _read(req)


@router.get("", response_model=list[AspecRequestRead])
def list_requests(session: SessionDep, scope: ScopeDep, office: str | None = None,
                  principal: Principal = require(ADMIN, OFFICE_ADMIN, EXAMINER, DEPOSITOR)):
    return [_read(r) for r in aspec.list_for(session, scope, office)]


@router.get("/{request_id}", response_model=AspecRequestRead)
def get_request(request_id: str, session: SessionDep, scope: ScopeDep,
                principal: Principal = require(ADMIN, OFFICE_ADMIN, EXAMINER, DEPOSITOR)):
    return _read(aspec.get(session, request_id, scope=scope))


@router.post("/{request_id}/withdraw", response_model=AspecRequestRead)
def withdraw(request_id: str, session: SessionDep, rid: RequestIdDep, scope: ScopeDep,
             principal: Principal = require(DEPOSITOR, EXAMINER, OFFICE_ADMIN)):
    return _read(aspec.withdraw(session, request_id, scope=scope, actor=principal.client_id,
                                request_id=rid))
