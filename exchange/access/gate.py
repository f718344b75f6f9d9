"""The access gate of the HTTP layer: :class:`dossiers.access.Gate` for the calling principal's
scope, its decisions counted in the metrics."""

from __future__ import annotations

from sqlalchemy.orm import Session

from dossiers import access

from .. import metrics
from .principals import Principal


class Gate(access.Gate):
    @classmethod
    def of(cls, session: Session, principal: Principal, request_id: str | None) -> Gate:
        return cls(session, principal.scope, principal.client_id, request_id, observe=metrics.access_decision)
