from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select

from dossiers.models import OutboxEvent
from workers.outbox import requeue_dead

from ..access.principals import ADMIN, Principal
from ..deps import SessionDep, require

router = APIRouter(prefix="/v1/outbox", tags=["operations"])


class OutboxRead(BaseModel):
    id: str
    topic: str
    created_at: datetime
    attempts: int
    sent_at: datetime | None
    dead_at: datetime | None
    last_error: str | None


@router.get("", response_model=list[OutboxRead], dependencies=[require(ADMIN)])
def list_outbox(session: SessionDep, state: str = "dead", limit: int = 100):
    """Events by state: ``dead`` (dead-lettered: the broker refused them too often), ``pending``
    (not yet published) or ``sent``."""
    q = select(OutboxEvent)
    q = {"dead": q.where(OutboxEvent.dead_at.is_not(None)),
         "pending": q.where(OutboxEvent.sent_at.is_(None), OutboxEvent.dead_at.is_(None)),
         "sent": q.where(OutboxEvent.sent_at.is_not(None))}.get(state, q.where(False))
    rows = session.scalars(q.order_by(OutboxEvent.created_at.desc()).limit(min(limit, 500)))
    return [OutboxRead(id=r.id, topic=r.topic, created_at=r.created_at, attempts=r.attempts, sent_at=r.sent_at,
                       dead_at=r.dead_at, last_error=r.last_error) for r in rows]


@router.post("/requeue")
def requeue(request: Request, principal: Principal = require(ADMIN)) -> dict:
    """Give every dead-lettered event another round."""
    return {"requeued": requeue_dead(request.app.state.session_factory)}
