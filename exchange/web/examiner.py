"""Examiner pages (issue 5): look an application up by any of its numbers, see its family
across offices with the partners' results and citations, read the documents, file ASPEC
requests, watch a family and read the inbox.

The pages hold no SQL and no access rule of their own: they call the services and the access
gate the API calls (the family read of :mod:`dossiers.families`, the document answer of
:mod:`exchange.documents`), so a page shows exactly what the same person would get from the
API, and a dossier one may not see answers the same 404 page as an unknown id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from dossiers import aspec, families, numbers, subscriptions
from dossiers.errors import DomainError, NotFound
from dossiers.models import Application, Document, Dossier
from dossiers.schemas import DOCUMENT_TYPES
from dossiers.vocab import AspecReason

from ..access.gate import Gate
from ..access.principals import EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, StoreDep
from ..documents import document_response
from ..links import application_path
from ..routes import watches as watches_api
from ..schemas import AspecRequestCreate
from .auth import WebContext, check_csrf, mark_web, next_target, web_user
from .render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_web)])

READERS = (EXAMINER, OFFICE_ADMIN)
# As the API: examiners file ASPEC requests; examiners and office-admins may withdraw them.
FILERS = (EXAMINER,)

# Each reason code with its explanation, as dossiers.vocab states them.
REASONS = {reason.value: reason.explanation for reason in AspecReason}
BASES = {
    "priority": "one application claims the other as priority",
    "common_priority": "both applications claim a common priority",
    "pct": "both applications derive from the same PCT application",
}
# Outcomes announced after a redirect (?done=…): fixed texts, so nothing from the URL is echoed.
DONE = {
    "watch-added": ("ok", "Watch saved: new results for this family will appear in your inbox."),
    "watch-refused": ("error", "The watch was not saved: check the e-mail address and try again."),
    "watch-removed": ("ok", "Watch removed."),
    "read": ("ok", "Notification marked as read."),
    "withdrawn": ("ok", "The ASPEC request is withdrawn; the first office's dossiers are no longer open to it."),
}


# --- shared helpers ---------------------------------------------------------------------------

def app_href(app: Application) -> str:
    return application_path(app, "/applications")


def claims_text(claims: list[int] | None) -> str:
    """``[1, 2, 3, 5]`` as ``1–3, 5``."""
    out: list[list[int]] = []
    for n in sorted(set(claims or [])):
        if out and n == out[-1][1] + 1:
            out[-1][1] = n
        else:
            out.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in out)


def _recipients(principal: Principal) -> list[str]:
    return subscriptions.recipients_of(principal.client_id, principal.office, principal.roles)


def _render(request: Request, session: Session, ctx: WebContext, name: str, status_code: int = 200, **context):
    request.state.unread = len(subscriptions.inbox(session, _recipients(ctx.principal), unread=True))
    messages = list(context.pop("messages", []))
    done = DONE.get(request.query_params.get("done", ""))
    if done:
        messages.insert(0, {"kind": done[0], "text": done[1]})
    return page(request, name, status_code=status_code, messages=messages, app_href=app_href, **context)


def _back(target: str, done: str, anchor: str = "") -> RedirectResponse:
    target = next_target(target).split("#")[0]
    sep = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{sep}done={done}{anchor}", status_code=303)


@dataclass
class Posted:
    """A form sent by a signed-in person, its CSRF token checked."""

    ctx: WebContext
    form: FormData

    def get(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def getlist(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.getlist(name) if isinstance(v, str) and v.strip()]


def web_form(*roles: str):
    """The access dependency of a POST page: ``web_user(*roles)``, then the form's CSRF check."""

    async def dependency(request: Request, ctx: WebContext = web_user(*roles)) -> Posted:
        await check_csrf(request, ctx)
        return Posted(ctx, await request.form())

    return Depends(dependency)


# --- the family, in one pass of the gate ------------------------------------------------------

@dataclass
class Member:
    app: Application
    own: bool
    dossiers: list[tuple[Dossier, list[Document]]]

    @property
    def types(self) -> list[str]:
        return sorted({doc.type for _, docs in self.dossiers for doc in docs})


@dataclass
class FamilyView:
    app: Application
    members: list[Member]
    citations: list[dict]

    @property
    def citing_offices(self) -> list[str]:
        return sorted({o for row in self.citations for o in row["by_office"]})


def family_view(session: Session, principal: Principal, rid: str | None, office: str, number: str) -> FamilyView:
    """The members and citation table the API's ``family`` and ``citations`` routes give: the
    same read (:func:`dossiers.families.read`), so each dossier's access decision is taken and
    audited once per page."""
    fam = families.read(Gate.of(session, principal, rid), office, number)
    members = [Member(m.application, m.application.office_code == principal.office,
                      [(seen.dossier, seen.documents) for seen in m.dossiers]) for m in fam.members]
    members.sort(key=lambda m: (m.app.filing_date or date.max, m.app.office_code, m.app.number))
    table: dict[str, dict] = {}
    for cited_key, seen in fam.citations().items():
        row = table.setdefault(cited_key, {"cited": seen[0].citation.cited, "written": set(), "by_office": {}})
        for x in seen:
            row["written"].add(x.citation.cited)
            row["by_office"].setdefault(x.dossier.office_code, []).append({
                "category": x.citation.category, "claims": claims_text(x.citation.claims),
                "application": x.member.number, "dossier_id": x.dossier.id})
    rows = sorted(table.values(), key=lambda r: (-len(r["by_office"]), r["cited"]))
    for r in rows:
        r["written"] = sorted(r["written"] - {r["cited"]})
    return FamilyView(fam.application, members, rows)


# --- search and the application page ----------------------------------------------------------

def _matched_by(app: Application, keys: set[str]) -> str:
    if app.number_key in keys:
        return "application number"
    if app.publication_key in keys:
        return "publication number"
    if app.pct_key in keys:
        return "PCT application"
    return "priority claim"


@router.get("/search")
def search(request: Request, session: SessionDep, rid: RequestIdDep, q: str = "",
           ctx: WebContext = web_user(*READERS)):
    q = q.strip()[:80]
    results = []
    if q:
        try:
            keys = set(numbers.candidates(q))
            apps = families.find(Gate.of(session, ctx.principal, rid), q)
        except ValueError:  # no letter or digit: nothing can match
            keys, apps = set(), []
        results = [(a, _matched_by(a, keys)) for a in apps]
    return _render(request, session, ctx, "examiner_search.html", q=q, results=results)


@router.get("/applications/{office}/{number}")
def application_page(office: str, number: str, request: Request, session: SessionDep, rid: RequestIdDep,
                     ctx: WebContext = web_user(*READERS)):
    fv = family_view(session, ctx.principal, rid, office, number)
    ids = {m.app.id for m in fv.members}
    mine = [w for w in subscriptions.watches(session, ctx.principal.client_id) if w.application_id in ids]
    numbers_of = {m.app.id: f"{m.app.office_code} {m.app.number}" for m in fv.members}
    return _render(request, session, ctx, "examiner_application.html", fv=fv, app=fv.app, watches=mine,
                   numbers_of=numbers_of, types=DOCUMENT_TYPES, here=request.url.path)


# --- dossiers and their documents -------------------------------------------------------------

@router.get("/dossiers/{dossier_id}")
def dossier_page(dossier_id: str, request: Request, session: SessionDep, rid: RequestIdDep, doc: str = "",
                 ctx: WebContext = web_user(*READERS)):
    gate = Gate.of(session, ctx.principal, rid)
    d, decision = gate.dossier(dossier_id)
    docs = gate.visible_documents(d, decision)
    shown = next((x for x in docs if x.document_id == doc), None) or next(
        (x for x in docs if x.media_type == "application/pdf"), None)
    return _render(request, session, ctx, "examiner_dossier.html", d=d, docs=docs, shown=shown,
                   rule=decision.rule)


def _document(kind: str, dossier_id: str, document_id: str, request: Request, session: Session, store,
              rid: str | None, principal: Principal):
    # The API's document answer (exchange/documents.py); only the disposition differs for a download.
    return document_response(request, store, Gate.of(session, principal, rid), dossier_id, document_id,
                             download=kind == "download")


@router.get("/dossiers/{dossier_id}/documents/{document_id}/view")
def view_document(dossier_id: str, document_id: str, request: Request, session: SessionDep, store: StoreDep,
                  rid: RequestIdDep, ctx: WebContext = web_user(*READERS)):
    return _document("view", dossier_id, document_id, request, session, store, rid, ctx.principal)


@router.get("/dossiers/{dossier_id}/documents/{document_id}/download")
def download_document(dossier_id: str, document_id: str, request: Request, session: SessionDep, store: StoreDep,
                      rid: RequestIdDep, ctx: WebContext = web_user(*READERS)):
    return _document("download", dossier_id, document_id, request, session, store, rid, ctx.principal)


# --- ASPEC requests ---------------------------------------------------------------------------

@router.get("/aspec")
def aspec_list(request: Request, session: SessionDep, ctx: WebContext = web_user(*READERS)):
    requests = aspec.list_for(session, ctx.principal.scope, None)
    return _render(request, session, ctx, "examiner_aspec_list.html", requests=requests)


def _first_office_candidates(session: Session, principal: Principal, rid: str | None,
                             number: str) -> tuple[Application | None, list[Member]]:
    """The examiner's application and the partners' family members with documents the examiner
    may read: the first-office documents a request can rely on."""
    if not number:
        return None, []
    try:
        fv = family_view(session, principal, rid, principal.scope.code, number)
    except NotFound:
        return None, []
    own_priorities = {p.number_key for p in fv.app.priorities}
    partners = [m for m in fv.members if not m.own and any(docs for _, docs in m.dossiers)]
    partners.sort(key=lambda m: m.app.number_key not in own_priorities)  # the priority application first
    return fv.app, partners


def _aspec_form(request: Request, session: Session, ctx: WebContext, rid: str | None, values: dict,
                errors: list[str] | None = None, status_code: int = 200):
    own, partners = _first_office_candidates(session, ctx.principal, rid, values.get("application", ""))
    if partners and not values.get("fo_office"):
        values = {**values, "fo_office": partners[0].app.office_code, "fo_number": partners[0].app.number}
    return _render(request, session, ctx, "examiner_aspec_new.html", status_code=status_code, values=values,
                   own=own, partners=partners, routes=aspec.ROUTES, errors=errors or [])


@router.get("/aspec/new")
def aspec_new(request: Request, session: SessionDep, rid: RequestIdDep, application: str = "",
              ctx: WebContext = web_user(*FILERS)):
    return _aspec_form(request, session, ctx, rid, {"application": application.strip()[:64], "route": "ASPEC",
                                                     "relied": []})


_FIELD_NAMES = {"route": "Route", "application": "Your application", "first_office_application":
                "First office application", "relied_documents": "Relied documents",
                "claim_correspondence": "Claim correspondence", "requested_on": "Requested on"}


def _aspec_body(f: Posted, office: str) -> tuple[AspecRequestCreate | None, list[str]]:
    """The API's request schema, from the form: the same validation as ``POST /v1/aspec-requests``."""
    errors: list[str] = []
    relied = []
    for ref in dict.fromkeys(f.getlist("relied") + [x.strip() for x in f.get("relied_lines").splitlines()
                                                     if x.strip()]):
        dossier_id, sep, document_id = ref.partition("/")
        if not (sep and dossier_id.strip() and document_id.strip()):
            errors.append(f"Relied documents: “{ref[:80]}” is not written as dossier_id/document_id.")
            continue
        relied.append({"dossier_id": dossier_id.strip(), "document_id": document_id.strip()})
    links = []
    for line in (x.strip() for x in f.get("claims").splitlines()):
        if not line:
            continue
        parts = [p.strip() for p in re.split(r"[,;]", line)]
        if len(parts) not in (2, 3) or not parts[0].isdigit() or not parts[1].isdigit():
            errors.append(f"Claim correspondence: “{line[:80]}” is not written as claim, first-office claim"
                          f"[, relation].")
            continue
        links.append({"claim": int(parts[0]), "first_office_claim": int(parts[1]),
                      "relation": parts[2] if len(parts) == 3 and parts[2] else "same"})
    if errors:
        return None, errors
    try:
        body = AspecRequestCreate(
            route=f.get("route"), application={"office": office, "number": f.get("application")},
            first_office_application={"office": f.get("fo_office").upper(), "number": f.get("fo_number")},
            relied_documents=relied, claim_correspondence=links or None,
            requested_on=f.get("requested_on") or None)
    except ValidationError as exc:
        return None, [f"{_FIELD_NAMES.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']}." for e in exc.errors()]
    return body, []


@router.post("/aspec")
def aspec_file(request: Request, session: SessionDep, rid: RequestIdDep, f: Posted = web_form(*FILERS)):
    principal = f.ctx.principal
    body, errors = _aspec_body(f, principal.scope.code)
    if body is not None:
        try:
            req = aspec.file_request(
                session, so_office=principal.scope.code, route=body.route, application=body.application.model_dump(),
                first_office_application=body.first_office_application.model_dump(),
                relied_documents=[r.model_dump() for r in body.relied_documents],
                claim_correspondence=[c.model_dump() for c in body.claim_correspondence]
                if body.claim_correspondence else None,
                requested_on=body.requested_on, actor=principal.client_id, request_id=rid)
        except DomainError as exc:  # refused before anything is written: show the form again
            errors = [exc.detail]
        else:
            return RedirectResponse(f"/aspec/{req.id}", status_code=303)
    values: dict[str, Any] = {k: f.get(k) for k in ("route", "application", "fo_office", "fo_number", "relied_lines",
                                                    "claims",
                                    "requested_on")}
    values["relied"] = f.getlist("relied")
    return _aspec_form(request, session, f.ctx, rid, values, errors, status_code=422)


@router.get("/aspec/{request_id}")
def aspec_page(request_id: str, request: Request, session: SessionDep, ctx: WebContext = web_user(*READERS)):
    req = aspec.get(session, request_id, scope=ctx.principal.scope)
    reasons = [(code, REASONS.get(code, "")) for code in req.reasons]
    return _render(request, session, ctx, "examiner_aspec.html", req=req, reasons=reasons,
                   basis=BASES.get(req.basis or ""))


@router.post("/aspec/{request_id}/withdraw")
def aspec_withdraw(request_id: str, session: SessionDep, rid: RequestIdDep,
                   f: Posted = web_form(EXAMINER, OFFICE_ADMIN)):
    aspec.withdraw(session, request_id, scope=f.ctx.principal.scope, actor=f.ctx.principal.client_id,
                   request_id=rid)
    return _back(f"/aspec/{request_id}", "withdrawn")


# --- watches and the inbox --------------------------------------------------------------------

@router.post("/watches")
def watch_create(session: SessionDep, rid: RequestIdDep, f: Posted = web_form(*READERS)):
    back = f.get("next") or "/inbox"
    try:
        body = watches_api.WatchCreate(
            application={"office": f.get("office"), "number": f.get("number")},
            scope=f.get("scope") or "family", document_types=f.getlist("document_types"),
            email=f.get("email") or None)
    except ValidationError:
        return _back(back, "watch-refused", "#watch")
    # The API's handler: an unpublished partner application is watched only when one of its
    # dossiers is visible, otherwise it does not exist (404) for the caller.
    watches_api.create_watch(body, session, rid, principal=f.ctx.principal)
    return _back(back, "watch-added", "#watch")


@router.post("/watches/{watch_id}/delete")
def watch_delete(watch_id: str, session: SessionDep, f: Posted = web_form(*READERS)):
    subscriptions.unwatch(session, f.ctx.principal.client_id, watch_id)
    return _back(f.get("next") or "/inbox", "watch-removed", "#watch")


@router.get("/inbox")
def inbox(request: Request, session: SessionDep, ctx: WebContext = web_user(*READERS)):
    notes = subscriptions.inbox(session, _recipients(ctx.principal))
    mine = subscriptions.watches(session, ctx.principal.client_id)
    # A watch keeps its application's id; the application was visible when the watch was made.
    watched = {w.id: session.get(Application, w.application_id) for w in mine}
    return _render(request, session, ctx, "examiner_inbox.html", notes=notes, watches=mine, watched=watched)


@router.post("/inbox/{notification_id}/read")
def inbox_read(notification_id: str, session: SessionDep, f: Posted = web_form(*READERS)):
    subscriptions.mark_read(session, _recipients(f.ctx.principal), notification_id)
    return _back("/inbox", "read")
