"""The outbox relay: claim unsent events, publish each to the broker, mark it sent.

At least once: an event whose publication succeeded but whose "sent" mark was lost is
published again, and the consumer (:func:`workers.notify.fan_out`) deduplicates on the event
id. An event that cannot be published after :data:`MAX_ATTEMPTS` tries is dead-lettered
(``dead_at``), visible to administrators, and can be requeued.

Each event is published with the id of the request that wrote it set as the current request
id, so the task message carries it in its headers (:mod:`workers.logs`) and the worker's log
lines about that event name the request.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from dossiers.db import utcnow
from dossiers.models import OutboxEvent

from . import logs
from .app import celery_app
from .base import ExchangeTask, context

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 20
BATCH = 200
# A published event that no worker has processed after this long is published again: its task
# was lost (a broker restarted without persistence) or failed. Consumers deduplicate.
REPUBLISH_AFTER = timedelta(minutes=5)
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}


def publish_event(celery, ev: OutboxEvent) -> None:
    """Hand one event to the broker as an ``events.fan_out`` task."""
    celery.send_task("events.fan_out", args=[ev.id], retry=True, retry_policy=PUBLISH_RETRY)


def _claimed(s, q):
    """``q`` locking its rows; on PostgreSQL, skipping those another relay holds."""
    return q.with_for_update(skip_locked=True) if s.get_bind().dialect.name == "postgresql" else q


def relay_once(session_factory, publish=None, *, batch: int = BATCH,
               republish_after: timedelta | None = REPUBLISH_AFTER) -> int:
    """Publish what is due; return how many events were published. Safe to run concurrently:
    on PostgreSQL rows are claimed with ``FOR UPDATE SKIP LOCKED``. With ``republish_after``
    (``None`` skips the check), events published that long ago and still unprocessed are due
    again first."""
    publish = publish or (lambda ev: publish_event(celery_app, ev))
    now = utcnow()
    if republish_after is not None:
        _unpublish_unprocessed(session_factory, now, now - republish_after, batch)
    published = 0
    with session_factory.begin() as s:
        q = (select(OutboxEvent)
             .where(OutboxEvent.sent_at.is_(None), OutboxEvent.dead_at.is_(None), OutboxEvent.available_at <= now)
             .order_by(OutboxEvent.created_at).limit(batch))
        for ev in s.scalars(_claimed(s, q)).all():
            with logs.bound(ev.request_id):
                try:
                    publish(ev)
                except Exception as exc:  # noqa: BLE001 - any broker failure: keep the event, try later
                    _failed_attempt(ev, now, f"{type(exc).__name__}: {str(exc)[:500]}",
                                    retry_at=now + timedelta(seconds=min(300, 2 ** min(ev.attempts + 1, 8))))
                    break  # the broker is down: the rest would fail the same way
            ev.sent_at = now
            published += 1
    return published


def _unpublish_unprocessed(session_factory, now, published_before, batch: int) -> int:
    """Make events published before ``published_before`` and still unprocessed due again. Each
    round counts as an attempt, so an event no worker can process ends dead-lettered."""
    with session_factory.begin() as s:
        q = (select(OutboxEvent)
             .where(OutboxEvent.processed_at.is_(None), OutboxEvent.sent_at <= published_before)
             .order_by(OutboxEvent.sent_at).limit(batch))
        rows = s.scalars(_claimed(s, q)).all()
        for ev in rows:
            _failed_attempt(ev, now, f"published at {ev.sent_at.isoformat()} but not processed; publishing again",
                            retry_at=now)
            ev.sent_at = None
        return len(rows)


def _failed_attempt(ev: OutboxEvent, now, error: str, *, retry_at) -> None:
    """Count a failed round of ``ev``: due again at ``retry_at``, dead-lettered after
    :data:`MAX_ATTEMPTS` rounds."""
    ev.attempts += 1
    ev.last_error, ev.available_at = error, retry_at
    if ev.attempts >= MAX_ATTEMPTS:
        ev.dead_at = now
        log.error("outbox event %s dead-lettered after %d attempts: %s", ev.id, ev.attempts, error)
    else:
        log.warning("outbox event %s: %s", ev.id, error)


@celery_app.task(name="outbox.relay", base=ExchangeTask)
def relay() -> int:
    ctx = context()
    return relay_once(ctx.session_factory, republish_after=timedelta(seconds=ctx.settings.outbox_republish_seconds))
