"""Writing events to the transactional outbox; the relay in ``workers/`` publishes them."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from .models import OutboxEvent


def emit(session: Session, topic: str, payload: dict) -> OutboxEvent:
    """Record ``topic`` in the caller's transaction; the relay publishes it after commit. The
    session is flagged so the HTTP layer can wake the relay as soon as the commit is done."""
    event = OutboxEvent(id=str(uuid.uuid4()), topic=topic, payload=payload,
                        request_id=session.info.get("request_id"))
    session.add(event)
    session.info["outbox_dirty"] = True
    return event
