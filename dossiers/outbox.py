"""Writing events to the transactional outbox; the relay in ``workers/`` publishes them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import utcnow
from .models import OutboxEvent
from .vocab import InternalTopic, Topic


def emit(session: Session, topic: Topic | InternalTopic, payload: dict) -> OutboxEvent:
    """Record ``topic`` in the caller's transaction; the relay publishes it after commit. The
    session is flagged so the HTTP layer can wake the relay as soon as the commit is done. A
    topic outside :mod:`dossiers.vocab` is a programming error (``ValueError``)."""
    topic = Topic(topic) if topic in Topic._value2member_map_ else InternalTopic(topic)
    event = OutboxEvent(id=str(uuid.uuid4()), topic=topic.value, payload=payload,
                        request_id=session.info.get("request_id"))
    session.add(event)
    session.info["outbox_dirty"] = True
    return event


def requeue_dead(session: Session, event_ids: list[str] | None = None) -> int:
    """Give dead-lettered events another round (administrators, after fixing the cause); the
    relay takes them at its next pass."""
    q = select(OutboxEvent).where(OutboxEvent.dead_at.is_not(None))
    if event_ids:
        q = q.where(OutboxEvent.id.in_(event_ids))
    rows = session.scalars(q).all()
    for ev in rows:
        ev.dead_at, ev.attempts, ev.available_at = None, 0, utcnow()
    session.flush()
    return len(rows)
