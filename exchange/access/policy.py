"""The access rule is pure domain logic, shared with the workers that route events: it lives
in :mod:`dossiers.policy`; the HTTP layer imports it from here."""

from dossiers.policy import AgreementFacts, Decision, DocumentDecision, DossierFacts, ViewerFacts, decide

__all__ = ["AgreementFacts", "Decision", "DocumentDecision", "DossierFacts", "ViewerFacts", "decide"]
