"""Appending to the hash-chained audit log.

Appends are ordered by an atomic increment of the single ``audit_head`` row: on
PostgreSQL that row lock serialises appenders until commit, on SQLite the write
lock does. Append last in a transaction to keep that window short.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crypto import audit_chain

from .db import utcnow
from .models import AuditEntry, AuditHead

log = logging.getLogger(__name__)


def append(
    session: Session,
    *,
    action: str,
    outcome: str,
    actor: str | None = None,
    office: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    detail: dict | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    row = session.execute(
        update(AuditHead).where(AuditHead.id == 1).values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    seq, prev = row
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor=actor,
        office_code=office,
        action=action,
        outcome=outcome,
        subject=subject,
        reason=reason,
        detail=detail or {},
        request_id=request_id,
        prev_hash=prev,
    )
    entry.hash = audit_chain.entry_hash(prev, entry.chained_fields())
    session.add(entry)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_hash=entry.hash))
    session.flush()
    return entry


def verify(session: Session, batch: int = 1000) -> int:
    """Walk the whole chain; return the number of entries or raise ``AuditChainBroken``."""
    def entries():
        last = 0
        while True:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            ).all()
            if not rows:
                return
            for r in rows:
                yield audit_chain.ChainedEntry(r.seq, r.chained_fields(), r.prev_hash, r.hash)
            last = rows[-1].seq

    count = audit_chain.verify_chain(entries())
    head = session.get(AuditHead, 1)
    if head is not None and head.seq != count:
        raise audit_chain.AuditChainBroken(count + 1, f"the head says {head.seq} entries, the log holds {count}")
    return count


def page(session: Session, *, office: str | None, all_offices: bool, action: str | None, outcome: str | None,
         before_seq: int | None, limit: int) -> list[AuditEntry]:
    """Entries newest first; ``all_offices`` only for the exchange's admin."""
    q = select(AuditEntry)
    if not all_offices:
        q = q.where(AuditEntry.office_code == office)
    if action:
        q = q.where(AuditEntry.action == action)
    if outcome:
        q = q.where(AuditEntry.outcome == outcome)
    if before_seq is not None:
        q = q.where(AuditEntry.seq < before_seq)
    return list(session.scalars(q.order_by(AuditEntry.seq.desc()).limit(limit)))


def append_apart(session_factory: sessionmaker, records: list[dict]) -> None:
    """Append ``records`` (keyword arguments of :func:`append`) in a transaction of their own:
    the audit entries of a refused request, whose own transaction was rolled back (a denied
    read answers 404, yet the decision stays in the log). Never raises: the refusal must still
    reach the client."""
    try:
        with session_factory.begin() as s:
            for r in records:
                append(s, **r)
    except Exception:  # the answer must still go out; the log says what was lost
        log.exception("could not write the audit entries of a refused request")
