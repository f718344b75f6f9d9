from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from dossiers import subscriptions
from dossiers.errors import NotFound
from dossiers.vocab import DocumentType

from ..access.gate import Gate
from ..access.principals import ADMIN, DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, require
from ..schemas import OfficeNumber

router = APIRouter(tags=["watches"])


class WatchCreate(BaseModel):
    application: OfficeNumber
    scope: Literal["application", "family"] = "family"
    document_types: list[DocumentType] = Field(default_factory=list)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")


class WatchRead(BaseModel):
    id: str
    application_id: int
    scope: str
    document_types: list[DocumentType]
    email: str | None
    created_at: datetime


class NotificationRead(BaseModel):
    id: str
    kind: str
    title: str
    body: dict
    created_at: datetime
    read_at: datetime | None


def _watch(w) -> WatchRead:
    return WatchRead(id=w.id, application_id=w.application_id, scope=w.scope, document_types=w.document_types,
                     email=w.email, created_at=w.created_at)


@router.post("/v1/watches", status_code=201, response_model=WatchRead)
def create_watch(body: WatchCreate, session: SessionDep, rid: RequestIdDep,
                 principal: Principal = require(EXAMINER, DEPOSITOR, OFFICE_ADMIN)):
    """Be told (inbox, and e-mail if given) when results arrive for an application or its family."""
    app = subscriptions.find_application(session, body.application.office, body.application.number)
    if app.office_code != principal.office and app.publication_number is None:
        if not Gate.of(session, principal, rid).visible_in([app])[app.id]:
            raise NotFound(f"no application {body.application.office} {body.application.number}")
    w = subscriptions.watch(session, office=principal.scope.code, client_id=principal.client_id, application=app,
                            scope=body.scope, document_types=body.document_types, email=body.email)
    return _watch(w)


@router.get("/v1/watches", response_model=list[WatchRead])
def list_watches(session: SessionDep, principal: Principal = require(EXAMINER, DEPOSITOR, OFFICE_ADMIN)):
    return [_watch(w) for w in subscriptions.watches(session, principal.client_id)]


@router.delete("/v1/watches/{watch_id}", status_code=204)
def delete_watch(watch_id: str, session: SessionDep,
                 principal: Principal = require(EXAMINER, DEPOSITOR, OFFICE_ADMIN)):
    subscriptions.unwatch(session, principal.client_id, watch_id)
    return Response(status_code=204)


@router.get("/v1/notifications", response_model=list[NotificationRead])
def notifications(session: SessionDep, unread: bool = False,
                  principal: Principal = require(EXAMINER, DEPOSITOR, OFFICE_ADMIN, ADMIN)):
    """The caller's inbox: its watches' news, and for an office-admin its office's alerts."""
    rec = subscriptions.recipients_of(principal.client_id, principal.office, principal.roles)
    return [NotificationRead(id=n.id, kind=n.kind, title=n.title, body=n.body, created_at=n.created_at,
                             read_at=n.read_at) for n in subscriptions.inbox(session, rec, unread=unread)]


@router.post("/v1/notifications/{notification_id}/read", response_model=NotificationRead)
def read_notification(notification_id: str, session: SessionDep,
                      principal: Principal = require(EXAMINER, DEPOSITOR, OFFICE_ADMIN, ADMIN)):
    rec = subscriptions.recipients_of(principal.client_id, principal.office, principal.roles)
    n = subscriptions.mark_read(session, rec, notification_id)
    return NotificationRead(id=n.id, kind=n.kind, title=n.title, body=n.body, created_at=n.created_at,
                            read_at=n.read_at)
