from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from dossiers.errors import InvalidRequest
from dossiers.models import OutboxEvent
from dossiers.outbox import requeue_dead

from ..access.principals import ADMIN, Principal
from ..deps import SessionDep, require

router = APIRouter(prefix="/v1/outbox", tags=["operations"])


class OutboxRead(BaseModel):
    id: str
    topic: str
    created_at: datetime
    attempts: int
    sent_at: datetime | None
    processed_at: datetime | None
    dead_at: datetime | None
    last_error: str | None


STATES = {
    "dead": lambda q: q.where(OutboxEvent.dead_at.is_not(None)),
    "pending": lambda q: q.where(OutboxEvent.sent_at.is_(None), OutboxEvent.dead_at.is_(None)),
    "unprocessed": lambda q: q.where(OutboxEvent.sent_at.is_not(None), OutboxEvent.processed_at.is_(None)),
    "sent": lambda q: q.where(OutboxEvent.sent_at.is_not(None)),
    "processed": lambda q: q.where(OutboxEvent.processed_at.is_not(None)),
}


@router.get("", response_model=list[OutboxRead], dependencies=[require(ADMIN)])
def list_outbox(session: SessionDep, state: str = "dead", limit: int = Query(100, ge=1, le=500)):
    """Events by state: ``dead`` (dead-lettered: the broker refused them, or no worker processed
    them, too often), ``pending`` (not yet published), ``unprocessed`` (published, no worker has
    processed them yet), ``sent`` or ``processed``."""
    if state not in STATES:
        raise InvalidRequest(f"state must be one of {', '.join(STATES)}, not {state!r}")
    q = STATES[state](select(OutboxEvent))
    rows = session.scalars(q.order_by(OutboxEvent.created_at.desc()).limit(limit))
    return [OutboxRead(id=r.id, topic=r.topic, created_at=r.created_at, attempts=r.attempts, sent_at=r.sent_at,
                       processed_at=r.processed_at, dead_at=r.dead_at, last_error=r.last_error) for r in rows]


@router.post("/requeue")
def requeue(session: SessionDep, principal: Principal = require(ADMIN)) -> dict:
    """Give every dead-lettered event another round."""
    return {"requeued": requeue_dead(session)}
