from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from dossiers import registry, repository
from dossiers.errors import NotFound, NotOwnApplication
from dossiers.models import Application

from ..access.gate import Gate
from ..access.principals import DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, require
from ..schemas import ApplicationCreate, ApplicationRead, FamilyMember, FamilyRead

router = APIRouter(prefix="/v1/applications", tags=["applications"])
READERS = (EXAMINER, DEPOSITOR, OFFICE_ADMIN)


def _path_number(app: Application) -> str:
    return quote(app.number if "/" not in app.number else app.number_key, safe="")


def application_read(app: Application) -> dict:
    base = f"/v1/applications/{app.office_code}/{_path_number(app)}"
    return ApplicationRead(
        office=app.office_code, number=app.number, number_key=app.number_key, filing_date=app.filing_date,
        title=app.title, ipc=app.ipc or [],
        priorities=[{"office": p.office, "number": p.number, "date": p.date} for p in app.priorities],
        pct=app.pct_number,
        publication={"number": app.publication_number, "date": app.publication_date} if app.publication_number else None,
        links={"family": f"{base}/family", "citations": f"{base}/citations"},
    ).model_dump()


def _shown(app: Application, viewer: str | None, visible_dossiers: int) -> bool:
    """Bibliographic data of a partner's unpublished application stays with its office, unless
    the viewer may read one of its dossiers anyway."""
    return viewer is None or app.office_code == viewer or app.publication_number is not None or visible_dossiers > 0


@router.post("", status_code=201, response_model=ApplicationRead,
             responses={200: {"model": ApplicationRead, "description": "already registered: updated"}})
def register_application(body: ApplicationCreate, session: SessionDep, rid: RequestIdDep,
                         principal: Principal = require(DEPOSITOR)):
    if body.office is not None and body.office != principal.office:
        raise NotOwnApplication(f"this client registers applications of {principal.office}, not {body.office}")
    app, created = registry.register_application(session, principal.office, body, actor=principal.client_id,
                                                 request_id=rid)
    out = application_read(app)
    return JSONResponse(ApplicationRead(**out).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", response_model=list[ApplicationRead])
def find_applications(session: SessionDep, rid: RequestIdDep,
                      number: str = Query(min_length=1, max_length=80,
                                          description="any application, publication, priority or PCT number"),
                      principal: Principal = require(*READERS)):
    apps = repository.find_applications(session, number)
    gate = Gate.of(session, principal, rid)
    visible = gate.visible_in(apps)
    return [application_read(a) for a in apps if _shown(a, principal.office, len(visible[a.id]))]


def _resolve(session, office: str, number: str, principal: Principal, gate: Gate) -> Application:
    app = repository.application(session, office, number)
    if app is None or not _shown(app, principal.office, len(gate.visible_in([app])[app.id])):
        raise NotFound(f"no application {office} {number}")
    return app


@router.get("/{office}/{number}/family", response_model=FamilyRead)
def family(office: str, number: str, session: SessionDep, rid: RequestIdDep,
           principal: Principal = require(*READERS)):
    """The family across offices (priority links either way, common priorities, one PCT
    application), with the dossiers and document types the caller may see for each member."""
    gate = Gate.of(session, principal, rid)
    app = _resolve(session, office, number, principal, gate)
    members = repository.family(session, app.id)
    visible = gate.visible_in(members)
    out = []
    for m in members:
        if not _shown(m, principal.office, len(visible[m.id])):
            continue
        dossiers = [{
            "dossier_id": d.id, "office": d.office_code, "received_at": d.received_at, "signed_at": d.signed_at,
            "document_types": sorted({doc.type for doc in d.documents if doc.document_id in decision.visible_documents}),
            "documents": [{"id": doc.document_id, "type": doc.type, "title": doc.title,
                           "href": f"/v1/dossiers/{d.id}/documents/{doc.document_id}"}
                          for doc in d.documents if doc.document_id in decision.visible_documents],
            "rule": decision.rule, "href": f"/v1/dossiers/{d.id}",
        } for d, decision in visible[m.id]]
        out.append(FamilyMember(**application_read(m), dossiers=dossiers))
    return FamilyRead(application=f"{app.office_code} {app.number}", members=out,
                      offices=sorted({m.office for m in out}))


@router.get("/{office}/{number}/citations")
def citations(office: str, number: str, session: SessionDep, rid: RequestIdDep,
              principal: Principal = require(*READERS)):
    """One table for the whole family: each cited document with, per office, its ST.14
    category and claims, built only from the dossiers the caller may see."""
    gate = Gate.of(session, principal, rid)
    app = _resolve(session, office, number, principal, gate)
    members = repository.family(session, app.id)
    visible = gate.visible_in(members)
    table: dict[str, dict] = {}
    for m in members:
        for d, _decision in visible[m.id]:
            for c in d.citations:
                row = table.setdefault(c.cited_key, {"cited": c.cited, "citations": []})
                row["citations"].append({"office": d.office_code, "application": m.number, "category": c.category,
                                         "claims": c.claims, "dossier_id": d.id})
    rows = sorted(table.values(), key=lambda r: (-len({x["office"] for x in r["citations"]}), r["cited"]))
    for r in rows:
        r["offices"] = sorted({x["office"] for x in r["citations"]})
        r["categories"] = sorted({x["category"] for x in r["citations"]})
    return {"application": f"{app.office_code} {app.number}", "citations": rows}
