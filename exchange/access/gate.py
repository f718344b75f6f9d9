"""Every read of a dossier passes here: gather the facts, let the pure policy decide, audit the
decision, and answer 404 for whatever the caller may not see, exactly as for an unknown id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from dossiers import audit, outbox, repository
from dossiers.db import utcnow
from dossiers.errors import NotFound
from dossiers.models import Application, Document, Dossier

from dossiers import policy

from .. import metrics
from .principals import Principal


@dataclass
class Gate:
    session: Session
    viewer: str | None  # the office, None for the exchange's admin
    actor: str
    request_id: str | None = None

    @classmethod
    def of(cls, session: Session, principal: Principal, request_id: str | None) -> "Gate":
        return cls(session, principal.office, principal.client_id, request_id)

    def _record(self, d: Dossier, decision: policy.Decision) -> dict:
        """The audit entry of a decision. Every audited decision passes here exactly once (the
        entry is written now, or after the rollback for a refusal), so it is counted here."""
        metrics.access_decision(decision.visible, decision.rule)
        return dict(action="access.decision", outcome="granted" if decision.visible else "denied",
                    actor=self.actor, office=self.viewer, subject=d.id, reason=decision.reason[:1000],
                    request_id=self.request_id,
                    detail={"rule": decision.rule, "dossier_office": d.office_code, "documents": decision.as_detail()})

    def decide(self, d: Dossier, *, at: datetime | None = None, audit_it: bool = True) -> policy.Decision:
        decision = policy.decide_for(self.session, self.viewer, d, at or utcnow())
        if audit_it:
            audit.append(self.session, **self._record(d, decision))
        return decision

    def dossier(self, dossier_id: str) -> tuple[Dossier, policy.Decision]:
        d = repository.dossier(self.session, dossier_id)
        if d is None:
            metrics.access_decision(False, "unknown-dossier")
            exc = NotFound(f"no dossier {dossier_id}")
            exc.audit.append(dict(action="access.decision", outcome="denied", actor=self.actor, office=self.viewer,
                                  subject=dossier_id[:200], reason="no such dossier", request_id=self.request_id))
            raise exc
        decision = self.decide(d, audit_it=False)
        if not decision.visible:
            exc = NotFound(f"no dossier {dossier_id}")
            exc.audit.append(self._record(d, decision))
            raise exc
        audit.append(self.session, **self._record(d, decision))
        return d, decision

    def visible_documents(self, d: Dossier, decision: policy.Decision) -> list[Document]:
        allowed = set(decision.visible_documents)
        return [doc for doc in d.documents if doc.document_id in allowed]

    def document(self, dossier_id: str, document_id: str) -> Document:
        d, decision = self.dossier(dossier_id)
        for doc in self.visible_documents(d, decision):
            if doc.document_id == document_id:
                if self.viewer != d.office_code:
                    outbox.emit(self.session, "dossier.accessed", {
                        "dossier_id": d.id, "document_id": document_id, "office": d.office_code,
                        "accessed_by": self.viewer, "at": utcnow().isoformat(),
                    })
                return doc
        metrics.access_decision(False, "document-not-shared")
        exc = NotFound(f"no document {document_id} in dossier {dossier_id}")
        exc.audit.append(dict(action="access.decision", outcome="denied", actor=self.actor, office=self.viewer,
                              subject=d.id, reason=f"document {document_id[:64]} is not shared with {self.viewer}",
                              request_id=self.request_id))
        raise exc

    def visible_in(self, applications: list[Application]) -> dict[int, list[tuple[Dossier, policy.Decision]]]:
        """The dossiers of these applications the viewer may see, with the decisions."""
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
        other = Gate(self.session, office, self.actor, self.request_id)
        return d, other.decide(d, audit_it=False)
