from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dossiers import retrieval
from dossiers.deposit import Caller, Deposit

from .. import pagination
from ..access.gate import Gate
from ..access.principals import ADMIN, DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, SettingsDep, StoreDep, require
from ..documents import document_response
from ..schemas import DepositReceipt, DocumentRead, DossierRead, DossierSummary, Page
from ..upload import receive

router = APIRouter(prefix="/v1/dossiers", tags=["dossiers"])
READERS = (DEPOSITOR, EXAMINER, OFFICE_ADMIN)

_DEPOSIT_DOC = """Deposit a signed dossier.

`multipart/form-data`: first a part `manifest` holding the compact JWS, then one part
per document, named by the document's `id`. Each part is hashed and stored as it
arrives; the deposit is refused, and nothing of it kept, if any check fails.
201 with the receipt; the same manifest again answers 200 with the first receipt."""


def _links(dossier_id: str) -> dict:
    base = f"/v1/dossiers/{dossier_id}"
    return {"self": base, "signature": f"{base}/signature"}


def _viewer(principal: Principal, rid: str | None) -> retrieval.Viewer:
    return retrieval.Viewer(principal.client_id, principal.scope, rid)


@router.post("", status_code=201, response_model=DepositReceipt, description=_DEPOSIT_DOC,
             responses={200: {"model": DepositReceipt, "description": "the same manifest again: the first receipt"}},
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["manifest"],
                 "properties": {"manifest": {"type": "string", "description": "compact JWS"}},
                 "additionalProperties": {"type": "string", "format": "binary"}}}}}})
async def deposit(request: Request, settings: SettingsDep, store: StoreDep, rid: RequestIdDep,
                  principal: Principal = require(DEPOSITOR)):
    dep = Deposit(request.app.state.session_factory, store, Caller(principal.client_id, principal.office, rid),
                  issuer=settings.issuer, retention=timedelta(days=settings.retention_days))
    result = await receive(request, dep, max_bytes=settings.max_deposit_bytes)
    body = DepositReceipt(dossier_id=result.dossier_id, receipt=result.receipt, received_at=result.received_at,
                          links=_links(result.dossier_id))
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if result.created else 200,
                        headers={"Location": f"/v1/dossiers/{result.dossier_id}"})


@router.get("", response_model=Page)
def list_dossiers(session: SessionDep, rid: RequestIdDep, cursor: str | None = None,
                  limit: int = Query(50, ge=1, le=pagination.MAX_LIMIT), office: str | None = None,
                  principal: Principal = require(*READERS)):
    decoded = pagination.decode(cursor, datetime, str)
    after = tuple(decoded) if decoded is not None else None
    rows = retrieval.list_dossiers(session, _viewer(principal, rid), after=after, limit=limit + 1, office=office)
    more = len(rows) > limit
    rows = rows[:limit]
    items = [DossierSummary(dossier_id=d.id, office=d.office_code, application_number=d.application.number,
                            signed_at=d.signed_at, received_at=d.received_at,
                            document_types=sorted({doc.type for doc in d.documents}),
                            href=f"/v1/dossiers/{d.id}") for d in rows]
    nxt = pagination.encode(rows[-1].received_at, rows[-1].id) if more else None
    return Page(items=items, next_cursor=nxt, links={"next": f"/v1/dossiers?cursor={nxt}&limit={limit}"} if nxt else {})


@router.get("/{dossier_id}", response_model=DossierRead)
def get_dossier(dossier_id: str, session: SessionDep, rid: RequestIdDep, principal: Principal = require(*READERS)):
    """The dossier with the documents the caller may see; the others are left out of the listing."""
    gate = Gate.of(session, principal, rid)
    d, decision = gate.dossier(dossier_id)
    docs = gate.visible_documents(d, decision)
    return DossierRead(
        dossier_id=d.id, office=d.office_code, application=d.manifest.get("application", {}),
        signed_at=d.signed_at, received_at=d.received_at, kid=d.kid, alg=d.alg,
        manifest_sha256=d.manifest_sha256, manifest=d.manifest, receipt=d.receipt.jws, links=_links(d.id),
        documents=[DocumentRead(id=x.document_id, type=x.type, title=x.title, language=x.language,
                                issued_on=x.issued_on, media_type=x.media_type, sha256=x.sha256, size=x.size,
                                allowable_claims=x.allowable_claims, translation_of=x.translation_of,
                                href=f"/v1/dossiers/{d.id}/documents/{x.document_id}") for x in docs],
    )


@router.get("/{dossier_id}/documents/{document_id}", response_class=StreamingResponse,
            responses={200: {"content": {"application/pdf": {}, "application/octet-stream": {}}}})
def get_document(dossier_id: str, document_id: str, request: Request, session: SessionDep, store: StoreDep,
                 rid: RequestIdDep, principal: Principal = require(*READERS)):
    return document_response(request, store, Gate.of(session, principal, rid), dossier_id, document_id)


@router.get("/{dossier_id}/signature", response_class=Response,
            responses={200: {"content": {"application/jose": {}}}})
def get_signature(dossier_id: str, session: SessionDep, rid: RequestIdDep, principal: Principal = require(*READERS)):
    d, _ = Gate.of(session, principal, rid).dossier(dossier_id)
    return Response(d.jws, media_type="application/jose",
                    headers={"Content-Disposition": f'attachment; filename="{d.id}.jws"'})


@router.get("/{dossier_id}/timeline")
def timeline(dossier_id: str, session: SessionDep, rid: RequestIdDep,
             principal: Principal = require(DEPOSITOR, EXAMINER, OFFICE_ADMIN, ADMIN)):
    """The dossier's history: deposited, announced to (shared with), accessed by. For the
    depositing office and the exchange's admin only: who read what is the depositor's to know."""
    from dossiers import repository
    from dossiers.errors import NotFound
    from dossiers.tracking import timeline as build

    d = repository.dossier(session, dossier_id)
    if d is None or not (principal.is_admin or principal.office == d.office_code):
        raise NotFound(f"no dossier {dossier_id}")
    return {"dossier_id": d.id, "office": d.office_code, "events": build(session, d)}
