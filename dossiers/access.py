"""Every read of a dossier passes here: gather the facts, let the pure policy
(:mod:`dossiers.policy`) decide on them, audit the decision once, and answer 404 for whatever
the reader may not see, exactly as for an unknown id.

The facts come from :mod:`dossiers.repository` in one statement; the policy holds no session
and imports nothing of the database: this module is the only place the two meet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from . import audit, outbox, policy, repository
from .db import utcnow
from .errors import NotFound
from .models import Application, Document, Dossier
from .scope import Scope, require_scope
from .vocab import AuditAction, Topic


def viewer_facts(session: Session, scope: Scope, dossier: Dossier) -> tuple[policy.ViewerFacts,
                                                                             list[policy.AgreementFacts]]:
    """What the policy needs to know about ``scope`` reading ``dossier``, in one statement. The
    exchange-wide scope is the exchange's operator, which the policy lets read no dossier."""
    require_scope(scope)
    if scope.is_everything:
        return policy.ViewerFacts(office=None), []
    office = scope.code
    if office == dossier.office_code:
        return policy.ViewerFacts(office=office), []
    corresponding, requests, agreements = repository.decision_facts(session, office, dossier.office_code,
                                                                    dossier.application_id)
    return policy.ViewerFacts(office=office, corresponding=corresponding, aspec_requests=tuple(requests)), agreements


def decide_for(session: Session, scope: Scope, dossier: Dossier, at: datetime) -> policy.Decision:
    """Gather the facts for ``scope`` reading ``dossier`` and decide. No audit: the caller audits
    (:class:`Gate`) or only routes events to the offices that may see what they announce."""
    viewer, agreements = viewer_facts(session, scope, dossier)
    return policy.decide(viewer, policy.dossier_facts(dossier), agreements, at)


def _no_observer(visible: bool, rule: str) -> None:
    """Where the HTTP layer counts decisions (its metrics); nothing by default."""


@dataclass
class Gate:
    """One reader's reads within one unit of work. Each dossier's decision is taken and audited
    once per gate, however many times the reader's request looks at it (a family page asks
    about the searched application's dossiers, then about the whole family's)."""

    session: Session
    scope: Scope
    actor: str
    request_id: str | None = None
    observe: Callable[[bool, str], None] = _no_observer
    _audited: dict[str, policy.Decision] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        require_scope(self.scope)

    @property
    def _office(self) -> str | None:
        return self.scope.office_or_none

    def _record(self, d: Dossier, decision: policy.Decision) -> dict:
        """The audit entry of a decision. Every audited decision passes here exactly once (the
        entry is written now, or after the rollback for a refusal), so it is counted here."""
        self.observe(decision.visible, decision.rule)
        return {"action": AuditAction.ACCESS_DECISION, "outcome": "granted" if decision.visible else "denied",
                "actor": self.actor, "office": self._office, "subject": d.id, "reason": decision.reason[:1000],
                "request_id": self.request_id,
                "detail": {"rule": decision.rule, "dossier_office": d.office_code,
                           "documents": decision.as_detail()}}

    def decide(self, d: Dossier, *, at: datetime | None = None, audit_it: bool = True) -> policy.Decision:
        done = self._audited.get(d.id)
        if done is not None:
            return done
        decision = decide_for(self.session, self.scope, d, at or utcnow())
        if audit_it:
            audit.append(self.session, **self._record(d, decision))
            self._audited[d.id] = decision
        return decision

    def dossier(self, dossier_id: str) -> tuple[Dossier, policy.Decision]:
        d = repository.dossier(self.session, dossier_id)
        if d is None:
            self.observe(False, "unknown-dossier")
            exc = NotFound(f"no dossier {dossier_id}")
            exc.audit.append({"action": AuditAction.ACCESS_DECISION, "outcome": "denied", "actor": self.actor,
                              "office": self._office, "subject": dossier_id[:200], "reason": "no such dossier",
                              "request_id": self.request_id})
            raise exc
        done = self._audited.get(d.id)
        if done is not None and done.visible:
            return d, done
        decision = done or decide_for(self.session, self.scope, d, utcnow())
        if not decision.visible:
            # Refused: the request is rolled back, the entry written after the rollback.
            exc = NotFound(f"no dossier {dossier_id}")
            exc.audit.append(self._record(d, decision))
            raise exc
        audit.append(self.session, **self._record(d, decision))
        self._audited[d.id] = decision
        return d, decision

    def visible_documents(self, d: Dossier, decision: policy.Decision) -> list[Document]:
        allowed = set(decision.visible_documents)
        return [doc for doc in d.documents if doc.document_id in allowed]

    def document(self, dossier_id: str, document_id: str) -> Document:
        d, decision = self.dossier(dossier_id)
        for doc in self.visible_documents(d, decision):
            if doc.document_id == document_id:
                if self._office != d.office_code:
                    outbox.emit(self.session, Topic.DOSSIER_ACCESSED, {
                        "dossier_id": d.id, "document_id": document_id, "office": d.office_code,
                        "accessed_by": self._office, "at": utcnow().isoformat(),
                    })
                return doc
        self.observe(False, "document-not-shared")
        exc = NotFound(f"no document {document_id} in dossier {dossier_id}")
        exc.audit.append({"action": AuditAction.ACCESS_DECISION, "outcome": "denied", "actor": self.actor,
                          "office": self._office, "subject": d.id,
                          "reason": f"document {document_id[:64]} is not shared with {self._office}",
                          "request_id": self.request_id})
        raise exc

    def visible_in(self, applications: list[Application]) -> dict[int, list[tuple[Dossier, policy.Decision]]]:
        """The dossiers of these applications the reader may see, with the decisions."""
        out: dict[int, list[tuple[Dossier, policy.Decision]]] = {a.id: [] for a in applications}
        for d in repository.dossiers_of(self.session, out.keys()):
            decision = self.decide(d)
            if decision.visible:
                out[d.application_id].append((d, decision))
        return out

    def explain(self, dossier_id: str, office: str) -> tuple[Dossier, policy.Decision]:
        """The decision for ``office`` (admin only): not audited as a read by that office."""
        d = repository.dossier(self.session, dossier_id)
        if d is None:
            raise NotFound(f"no dossier {dossier_id}")
        return d, decide_for(self.session, Scope.office(office), d, utcnow())
