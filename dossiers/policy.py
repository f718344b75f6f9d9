"""Who may see a partner's dossier: the contract's rules (a) and (b), as a pure function.

No database, no clock, no I/O: the caller gathers the facts, :func:`decide` returns the
decision per document with the rule that made it, and the caller audits it. Deny by
default: a document is visible only when a rule grants it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class AgreementFacts:
    id: str
    program: str
    members: frozenset[str]
    document_types: frozenset[str]
    status: str
    valid_from: datetime
    valid_until: datetime | None
    require_corresponding: bool
    share_unpublished: bool

    def in_force(self, at: datetime) -> bool:
        return in_force(self.status, self.valid_from, self.valid_until, at)


def in_force(status: str, valid_from: datetime, valid_until: datetime | None, at: datetime) -> bool:
    """The one rule of an agreement in force at ``at``: active, and ``at`` inside its window
    (the end excluded). The access policy and the ASPEC check both ask this."""
    return status == "active" and valid_from <= at and (valid_until is None or at < valid_until)


@dataclass(frozen=True)
class DossierFacts:
    dossier_id: str
    office: str
    published_on: date | None
    documents: tuple[tuple[str, str], ...]  # (document id, type)


@dataclass(frozen=True)
class ViewerFacts:
    office: str | None
    corresponding: bool = False  # the viewer's office holds an application corresponding to the dossier's
    aspec_requests: tuple[str, ...] = ()  # accepted ASPEC requests of the viewer relying on this application


@dataclass(frozen=True)
class DocumentDecision:
    granted: bool
    rule: str  # "own-office", "agreement:<id>", "aspec-request:<id>" or "deny"
    reason: str


@dataclass(frozen=True)
class Decision:
    dossier_id: str
    viewer: str | None
    documents: dict[str, DocumentDecision] = field(default_factory=dict)

    @property
    def visible(self) -> bool:
        return any(d.granted for d in self.documents.values())

    @property
    def visible_documents(self) -> list[str]:
        return [i for i, d in self.documents.items() if d.granted]

    @property
    def rule(self) -> str:
        rules = sorted({d.rule for d in self.documents.values() if d.granted})
        return ", ".join(rules) if rules else "deny"

    @property
    def reason(self) -> str:
        if self.visible:
            return "; ".join(sorted({f"{i}: {d.reason}" for i, d in self.documents.items() if d.granted}))
        reasons = sorted({d.reason for d in self.documents.values()})
        return "; ".join(reasons) or "the dossier has no documents"

    def as_detail(self) -> dict:
        return {i: {"granted": d.granted, "rule": d.rule, "reason": d.reason} for i, d in self.documents.items()}


def decide(viewer: ViewerFacts, dossier: DossierFacts, agreements: Iterable[AgreementFacts], at: datetime) -> Decision:
    """Decide, document by document, whether ``viewer`` may read ``dossier`` at time ``at``."""
    docs: dict[str, DocumentDecision] = {}
    if viewer.office is None:
        for doc_id, _ in dossier.documents:
            docs[doc_id] = DocumentDecision(False, "deny", "the exchange's operator is no office and reads no dossier")
        return Decision(dossier.dossier_id, None, docs)
    if viewer.office == dossier.office:
        for doc_id, _ in dossier.documents:
            docs[doc_id] = DocumentDecision(True, "own-office", "an office always sees its own dossiers")
        return Decision(dossier.dossier_id, viewer.office, docs)

    shared = [a for a in agreements if viewer.office in a.members and dossier.office in a.members]
    in_force_now = [a for a in shared if a.in_force(at)]
    for doc_id, doc_type in dossier.documents:
        decision = None
        refusals: list[str] = []
        for a in in_force_now:
            why = _agreement_refusal(a, viewer, dossier, doc_type, at)
            if why is None:
                decision = DocumentDecision(True, f"agreement:{a.id}",
                                            f"{a.program} agreement {a.id} shares {doc_type}")
                break
            refusals.append(why)
        if decision is None and viewer.aspec_requests:
            req = sorted(viewer.aspec_requests)[0]
            decision = DocumentDecision(True, f"aspec-request:{req}",
                                        f"accepted ASPEC request {req} relies on this application")
        if decision is None:
            if not shared:
                reason = f"no agreement has both {viewer.office} and {dossier.office} as members"
            elif not in_force_now:
                reason = (f"no agreement between {viewer.office} and {dossier.office} is in force "
                          f"({', '.join(sorted(f'{a.id}: {a.status}' for a in shared))})")
            else:
                reason = "; ".join(sorted(set(refusals)))
            decision = DocumentDecision(False, "deny", reason)
        docs[doc_id] = decision
    return Decision(dossier.dossier_id, viewer.office, docs)


def _agreement_refusal(a: AgreementFacts, viewer: ViewerFacts, dossier: DossierFacts, doc_type: str,
                       at: datetime) -> str | None:
    """Why agreement ``a`` (in force, both offices members) does not share this document, or None."""
    if doc_type not in a.document_types:
        return f"agreement {a.id} does not share {doc_type} documents"
    if not a.share_unpublished and (dossier.published_on is None or dossier.published_on > at.date()):
        return f"agreement {a.id} shares published applications only and {dossier.office}'s is not published"
    if a.require_corresponding and not viewer.corresponding:
        return (f"agreement {a.id} requires a corresponding application and {viewer.office} "
                f"holds none for this one")
    return None


def agreement_facts(a) -> AgreementFacts:
    """Facts of an ``Agreement`` row."""
    return AgreementFacts(
        id=a.id, program=a.program, members=frozenset(a.member_codes), document_types=frozenset(a.document_types),
        status=a.status, valid_from=a.valid_from, valid_until=a.valid_until,
        require_corresponding=a.require_corresponding, share_unpublished=a.share_unpublished,
    )


def dossier_facts(d) -> DossierFacts:
    """Facts of a ``Dossier`` row (with its application and documents loaded)."""
    return DossierFacts(
        dossier_id=d.id, office=d.office_code, published_on=d.application.publication_date,
        documents=tuple((doc.document_id, doc.type) for doc in d.documents),
    )

