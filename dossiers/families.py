"""A family read for one reader: the application searched for, its family across offices, the
dossiers and documents the reader may see of each member, and the family's citations. The
API's family and citation routes and the examiner's pages all read through here, with one
:class:`~dossiers.access.Gate`, so each dossier's access decision is taken and audited once
per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import repository
from .access import Gate
from .errors import NotFound
from .models import Application, Citation, Document, Dossier
from .policy import Decision
from .scope import Scope


def shown(scope: Scope, app: Application, visible_dossiers: int) -> bool:
    """Bibliographic data of a partner's unpublished application stays with its office, unless
    the reader may read one of its dossiers anyway (API contract)."""
    return scope.includes(app.office_code) or app.publication_number is not None or visible_dossiers > 0


@dataclass
class SeenDossier:
    dossier: Dossier
    decision: Decision
    documents: list[Document]  # the ones the reader may see, in the dossier's order


@dataclass
class Member:
    application: Application
    dossiers: list[SeenDossier]

    @property
    def document_types(self) -> list[str]:
        return sorted({doc.type for seen in self.dossiers for doc in seen.documents})


@dataclass
class CitationSeen:
    member: Application
    dossier: Dossier
    citation: Citation


@dataclass
class Family:
    application: Application
    members: list[Member]  # the members the reader may know of, by filing date and office

    def citations(self) -> dict[str, list[CitationSeen]]:
        """Each cited document (by its key) with the citations of it in the dossiers the reader
        may see, in the members' order."""
        table: dict[str, list[CitationSeen]] = {}
        for m in self.members:
            for seen in m.dossiers:
                for c in seen.dossier.citations:
                    table.setdefault(c.cited_key, []).append(CitationSeen(m.application, seen.dossier, c))
        return table


def _seen(gate: Gate, visible: list[tuple[Dossier, Decision]]) -> list[SeenDossier]:
    return [SeenDossier(d, decision, gate.visible_documents(d, decision)) for d, decision in visible]


def find(gate: Gate, text: str) -> list[Application]:
    """Applications any of whose numbers matches ``text`` that the reader may know of."""
    apps = repository.find_applications(gate.session, text)
    visible = gate.visible_in(apps)
    return [a for a in apps if shown(gate.scope, a, len(visible[a.id]))]


def resolve(gate: Gate, office: str, number: str) -> Application:
    """The office's application with this number, if the reader may know of it (404 otherwise,
    as for one that does not exist)."""
    app = repository.application(gate.session, office, number)
    if app is None or not shown(gate.scope, app, len(gate.visible_in([app])[app.id])):
        raise NotFound(f"no application {office} {number}")
    return app


def read(gate: Gate, office: str, number: str) -> Family:
    """The family of the office's application ``number`` as the reader may see it."""
    app = resolve(gate, office, number)
    apps = repository.family(gate.session, app.id)
    visible = gate.visible_in(apps)  # the searched application's dossiers are decided already
    members = [Member(m, _seen(gate, visible[m.id])) for m in apps if shown(gate.scope, m, len(visible[m.id]))]
    return Family(app, members)


def document(gate: Gate, dossier_id: str, document_id: str) -> Document:
    """A document of a dossier, if the reader may see it (audited, and announced to the
    depositing office when a partner reads it)."""
    return gate.document(dossier_id, document_id)
