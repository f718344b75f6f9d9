"""Applications: registration, look-up by any number, and the family and its citations as the
caller may see them (:mod:`dossiers.families`, one access decision per dossier)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from dossiers import families, registry
from dossiers.errors import NotOwnApplication
from dossiers.models import Application

from ..access.gate import Gate
from ..access.principals import DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, require
from ..links import application_path
from ..schemas import ApplicationCreate, ApplicationRead, FamilyMember, FamilyRead

router = APIRouter(prefix="/v1/applications", tags=["applications"])
READERS = (EXAMINER, DEPOSITOR, OFFICE_ADMIN)


def application_read(app: Application) -> dict:
    base = application_path(app)
    return ApplicationRead(
        office=app.office_code, number=app.number, number_key=app.number_key, filing_date=app.filing_date,
        title=app.title, ipc=app.ipc or [],
        priorities=[{"office": p.office, "number": p.number, "date": p.date} for p in app.priorities],
        pct=app.pct_number,
        publication=({"number": app.publication_number, "date": app.publication_date}
                     if app.publication_number else None),
        links={"family": f"{base}/family", "citations": f"{base}/citations"},
    ).model_dump()


@router.post("", status_code=201, response_model=ApplicationRead,
             responses={200: {"model": ApplicationRead, "description": "already registered: updated"}})
def register_application(body: ApplicationCreate, session: SessionDep, rid: RequestIdDep,
                         principal: Principal = require(DEPOSITOR)):
    if body.office is not None and body.office != principal.office:
        raise NotOwnApplication(f"this client registers applications of {principal.office}, not {body.office}")
    app, created = registry.register_application(session, principal.scope.code, body, actor=principal.client_id,
                                                 request_id=rid)
    out = application_read(app)
    return JSONResponse(ApplicationRead(**out).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", response_model=list[ApplicationRead])
def find_applications(session: SessionDep, rid: RequestIdDep,
                      number: str = Query(min_length=1, max_length=80,
                                          description="any application, publication, priority or PCT number"),
                      principal: Principal = require(*READERS)):
    return [application_read(a) for a in families.find(Gate.of(session, principal, rid), number)]


@router.get("/{office}/{number}/family", response_model=FamilyRead)
def family(office: str, number: str, session: SessionDep, rid: RequestIdDep,
           principal: Principal = require(*READERS)):
    """The family across offices (priority links either way, common priorities, one PCT
    application), with the dossiers and document types the caller may see for each member."""
    fam = families.read(Gate.of(session, principal, rid), office, number)
    out = []
    for m in fam.members:
        dossiers = [{
            "dossier_id": seen.dossier.id, "office": seen.dossier.office_code, "received_at": seen.dossier.received_at,
            "signed_at": seen.dossier.signed_at,
            "document_types": sorted({doc.type for doc in seen.documents}),
            "documents": [{"id": doc.document_id, "type": doc.type, "title": doc.title,
                           "href": f"/v1/dossiers/{seen.dossier.id}/documents/{doc.document_id}"}
                          for doc in seen.documents],
            "rule": seen.decision.rule, "href": f"/v1/dossiers/{seen.dossier.id}",
        } for seen in m.dossiers]
        out.append(FamilyMember(**application_read(m.application), dossiers=dossiers))
    return FamilyRead(application=f"{fam.application.office_code} {fam.application.number}", members=out,
                      offices=sorted({m.office for m in out}))


@router.get("/{office}/{number}/citations")
def citations(office: str, number: str, session: SessionDep, rid: RequestIdDep,
              principal: Principal = require(*READERS)):
    """One table for the whole family: each cited document with, per office, its ST.14
    category and claims, built only from the dossiers the caller may see."""
    fam = families.read(Gate.of(session, principal, rid), office, number)
    rows: list[dict[str, Any]] = []
    for seen in fam.citations().values():
        rows.append({"cited": seen[0].citation.cited, "citations": [
            {"office": x.dossier.office_code, "application": x.member.number, "category": x.citation.category,
             "claims": x.citation.claims, "dossier_id": x.dossier.id} for x in seen]})
    rows.sort(key=lambda r: (-len({x["office"] for x in r["citations"]}), r["cited"]))
    for r in rows:
        r["offices"] = sorted({x["office"] for x in r["citations"]})
        r["categories"] = sorted({x["category"] for x in r["citations"]})
    return {"application": f"{fam.application.office_code} {fam.application.number}", "citations": rows}
