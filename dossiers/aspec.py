"""ASPEC requests: the second office (SO) records an applicant's request to use the first
office's (FO) results; the exchange checks it against the programme's rules and answers
``accepted`` or ``rejected`` with every reason code that applies (API contract).

An accepted request opens the FO's dossiers for that application to the SO, published or
not (rule (b) of the access policy); withdrawal closes them.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, outbox, policy, repository
from .access import decide_for
from .db import utcnow
from .errors import Forbidden, InvalidRequest, NotFound, NotOwnApplication, ReliedDocumentUnknown
from .models import AspecRequest, Document, Dossier, Office
from .scope import Scope, require_scope
from .vocab import AspecReason, AuditAction, AuditOutcome, Topic

ASEAN = frozenset({"SG", "MY", "TH", "VN", "ID", "PH", "BN", "KH", "LA"})
ROUTES = ("ASPEC", "PCT-ASPEC", "AIM")
WRITTEN_OPINION_FROM = date(2021, 6, 15)
REPORTS = {"WO", "ER", "WOISA", "IPRP"}
# Offices whose ASPEC settings refuse written opinions unless an administrator says otherwise.
REFUSES_WRITTEN_OPINIONS = frozenset({"TH"})


def office_settings(office: Office) -> dict:
    aspec = dict((office.settings or {}).get("aspec", {}))
    aspec.setdefault("requires_cct", False)
    aspec.setdefault("accepts_written_opinion", office.code not in REFUSES_WRITTEN_OPINIONS)
    return aspec


def correspondence_basis(so_app, fo_app) -> str | None:
    so_pri = {p.number_key for p in so_app.priorities}
    fo_pri = {p.number_key for p in fo_app.priorities}
    if fo_app.number_key in so_pri or so_app.number_key in fo_pri:
        return "priority"
    if so_pri & fo_pri:
        return "common_priority"
    if so_app.pct_key and so_app.pct_key == fo_app.pct_key:
        return "pct"
    return None


def _in_force_aspec(s: Session, so: str, fo: str, at: datetime) -> bool:
    return any(a.program == "ASPEC" and fo in a.members and a.in_force(at)
               for a in map(policy.agreement_facts, repository.agreements_of(s, so)))


def _english(doc: Document, siblings: list[Document]) -> bool:
    if (doc.language or "").lower().split("-")[0] == "en":
        return True
    return any(o.translation_of == doc.document_id and (o.language or "").lower().split("-")[0] == "en"
               for o in siblings)


def _may_rely(s: Session, so_office: str, fo_office: str, fo_app, basis: str | None, doc: Document | None,
              at: datetime) -> bool:
    """Whether the SO may name ``doc`` in a request about ``fo_app``. A request may rely on
    documents the SO cannot see yet (it is what opens them), but only of an application that
    corresponds to the SO's own: relying on any other must read exactly like relying on a
    dossier that does not exist (API contract, "What a partner sees of a dossier"). A dossier
    the SO already sees may be named whatever the correspondence (``NOT_CORRESPONDING`` then
    tells the SO nothing it could not read)."""
    if doc is None or fo_app is None or doc.dossier.office_code != fo_office or doc.dossier.application_id != fo_app.id:
        return False
    return basis is not None or decide_for(s, Scope.office(so_office), doc.dossier, at).visible


def file_request(s: Session, *, so_office: str, route: str, application: dict, first_office_application: dict,
                 relied_documents: list[dict], claim_correspondence: list[dict] | None,
                 requested_on: date | None, actor: str, request_id: str | None = None) -> AspecRequest:
    if route not in ROUTES:
        raise InvalidRequest(f"route must be one of {', '.join(ROUTES)}")
    if application.get("office") != so_office:
        raise NotOwnApplication(f"an ASPEC request is filed by the second office for its own application; "
                                f"{application.get('office')} is not {so_office}")
    so_app = repository.application(s, so_office, application["number"])
    if so_app is None:
        raise NotFound(f"office {so_office} has no application {application['number']}; register it first")
    fo_office = first_office_application["office"]
    fo = s.get(Office, fo_office)
    if fo is None:
        raise InvalidRequest(f"unknown first office {fo_office}")
    fo_app = repository.application(s, fo_office, first_office_application["number"])

    refs = [(r["dossier_id"], r["document_id"]) for r in relied_documents]
    if not refs:
        raise InvalidRequest("relied_documents must name at least one first-office document")
    now = utcnow()
    basis = correspondence_basis(so_app, fo_app) if fo_app is not None else None
    found = repository.documents_by_ref(s, refs)
    bad = [f"{d}/{i}" for d, i in refs if not _may_rely(s, so_office, fo_office, fo_app, basis, found.get((d, i)), now)]
    if bad:
        # The same answer whether a document does not exist, is not the first office's, or is
        # one the SO may not see of an application that does not correspond to its own.
        raise ReliedDocumentUnknown(f"no such first-office document: {', '.join(bad)}", documents=bad)
    docs = [found[r] for r in refs]
    so = s.get(Office, so_office)
    assert so is not None  # the caller's own office
    settings = office_settings(so)
    on = requested_on or now.date()
    reasons: list[AspecReason] = []

    if so_office == fo_office or not _in_force_aspec(s, so_office, fo_office, now):
        reasons.append(AspecReason.NOT_PARTICIPANT)
    if basis is None:
        reasons.append(AspecReason.NOT_CORRESPONDING)

    types = {d.type for d in docs}
    pct = route == "PCT-ASPEC"
    search, exam, opinion = ("ISR", "IPRP", "WOISA") if pct else ("SR", "ER", "WO")
    reports = [d for d in docs if d.type in REPORTS]
    allowable = [d for d in reports if d.allowable_claims]
    opinion_ok = (on >= WRITTEN_OPINION_FROM and settings["accepts_written_opinion"]
                  and any(d.type == opinion and d.allowable_claims for d in docs))
    if not ({search, exam} <= types or opinion_ok):
        reasons.append(AspecReason.MISSING_MIN_DOCS)
    if reports and not allowable:
        reasons.append(AspecReason.NO_ALLOWABLE_CLAIM)
    if pct and any(d.type in {"ISR", "WOISA", "IPRP"} and d.dossier.office_code not in ASEAN for d in docs):
        reasons.append(AspecReason.ISA_NOT_ASEAN)
    if "CLAIMS" not in types:
        reasons.append(AspecReason.MISSING_CLAIMS)
    if settings["requires_cct"] and "CCT" not in types and not claim_correspondence:
        reasons.append(AspecReason.MISSING_CCT)
    if any(not _english(d, d.dossier.documents) for d in docs):
        reasons.append(AspecReason.NOT_ENGLISH)
    decided = s.scalars(select(Document.id).join(Dossier).where(
        Dossier.application_id == so_app.id, Dossier.office_code == so_office,
        Document.type.in_(("GRANT", "REFUSAL"))).limit(1)).first()
    if decided is not None:
        reasons.append(AspecReason.TOO_LATE)

    req = AspecRequest(
        id=str(uuid.uuid4()), route=route, so_office=so_office, so_application_id=so_app.id, fo_office=fo_office,
        fo_application_id=fo_app.id if fo_app else None, fo_number=first_office_application["number"],
        relied_documents=[{"dossier_id": d, "document_id": i} for d, i in refs],
        claim_correspondence=claim_correspondence, status="rejected" if reasons else "accepted",
        reasons=reasons, basis=basis, created_by=actor, decided_at=now,
    )
    s.add(req)
    s.flush()
    _decided(s, req, actor, request_id)
    return req


def _decided(s: Session, req: AspecRequest, actor: str, request_id: str | None) -> None:
    payload = {"aspec_request_id": req.id, "status": req.status, "reasons": req.reasons, "so_office": req.so_office,
               "fo_office": req.fo_office, "route": req.route}
    outbox.emit(s, Topic.ASPEC_REQUEST_DECIDED, payload)
    audit.append(s, action=AuditAction.ASPEC_REQUEST_DECIDE, outcome=AuditOutcome(req.status), actor=actor,
                 office=req.so_office,
                 subject=req.id, reason=",".join(req.reasons) or None, detail=payload, request_id=request_id)


def get(s: Session, request_id_: str, *, scope: Scope) -> AspecRequest:
    """The request, if ``scope`` includes its first or second office; otherwise it does not exist."""
    require_scope(scope)
    req = s.get(AspecRequest, request_id_)
    if req is None or not scope.includes(req.so_office, req.fo_office):
        raise NotFound(f"no ASPEC request {request_id_}")
    return req


def list_for(s: Session, scope: Scope, office: str | None) -> list[AspecRequest]:
    """The requests within ``scope``, newest first; ``office`` narrows them to one office's (either side)."""
    require_scope(scope)
    q = select(AspecRequest).order_by(AspecRequest.created_at.desc())
    if not scope.is_everything:
        q = q.where((AspecRequest.so_office == scope.code) | (AspecRequest.fo_office == scope.code))
    if office:
        q = q.where((AspecRequest.so_office == office) | (AspecRequest.fo_office == office))
    return list(s.scalars(q.limit(500)))


def withdraw(s: Session, req_id: str, *, scope: Scope, actor: str, request_id: str | None = None) -> AspecRequest:
    req = get(s, req_id, scope=scope)
    if scope.is_everything or scope.code != req.so_office:
        raise Forbidden("only the second office that filed the request may withdraw it")
    if req.status == "withdrawn":
        return req
    req.status = "withdrawn"
    req.withdrawn_at = utcnow()
    s.flush()
    payload = {"aspec_request_id": req.id, "status": req.status, "so_office": req.so_office, "fo_office": req.fo_office}
    outbox.emit(s, Topic.ASPEC_REQUEST_DECIDED, payload)
    audit.append(s, action=AuditAction.ASPEC_REQUEST_WITHDRAW, outcome=AuditOutcome.OK, actor=actor,
                 office=req.so_office, subject=req.id,
                 detail=payload, request_id=request_id)
    return req
