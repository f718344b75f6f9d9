"""Appending to the hash-chained audit log.

Appends are ordered by an atomic increment of the single ``audit_head`` row: on
PostgreSQL that row lock serialises appenders until commit, on SQLite the write
lock does. Append last in a transaction to keep that window short.

Actions and outcomes come from :mod:`dossiers.vocab`: an append with any other value is a
programming error and raises ``ValueError`` before anything is written.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crypto import audit_chain

from .db import utcnow
from .models import AuditEntry, AuditHead
from .scope import Scope, require_scope
from .vocab import AuditAction, AuditOutcome

log = logging.getLogger(__name__)


def append(
    session: Session,
    *,
    action: AuditAction,
    outcome: AuditOutcome,
    actor: str | None = None,
    office: str | None = None,
    subject: str | None = None,
    reason: str | None = None,
    detail: dict | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    action, outcome = AuditAction(action), AuditOutcome(outcome)
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
        action=action.value,
        outcome=outcome.value,
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


@dataclass(frozen=True)
class Checkpoint:
    """The last entry a verification reached: ``count`` entries verified, ending in ``hash``."""

    count: int
    hash: str = audit_chain.GENESIS


def verify(session: Session, batch: int = 1000) -> int:
    """Walk the whole chain; return the number of entries or raise ``AuditChainBroken``."""
    return verify_from(session, None, batch=batch).count


def verify_from(session: Session, checkpoint: Checkpoint | None, batch: int = 1000) -> Checkpoint:
    """Verify the entries after ``checkpoint`` (all of them without one) and the head; return
    the new checkpoint or raise ``AuditChainBroken``.

    The entries up to the checkpoint are not read again, except the checkpoint's own entry,
    whose hash must still be the one verified: the full walk is ``exchange audit verify``."""
    start = checkpoint or Checkpoint(0)
    if start.count and not _still_verified(session, start):
        raise audit_chain.AuditChainBroken(start.count, "it changed since it was verified")

    last_hash = start.hash

    def entries():
        nonlocal last_hash
        last = start.count
        while True:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(batch)
            ).all()
            if not rows:
                return
            for r in rows:
                yield audit_chain.ChainedEntry(r.seq, r.chained_fields(), r.prev_hash, r.hash)
            last, last_hash = rows[-1].seq, rows[-1].hash

    count = start.count + audit_chain.verify_chain(entries(), start_hash=start.hash, start_seq=start.count + 1)
    head = session.get(AuditHead, 1)
    if head is not None and head.seq != count:
        raise audit_chain.AuditChainBroken(count + 1, f"the head says {head.seq} entries, the log holds {count}")
    return Checkpoint(count, last_hash)


def _still_verified(session: Session, checkpoint: Checkpoint) -> bool:
    """Whether the checkpoint's entry is still there, unchanged, with the hash verified."""
    e = session.scalar(select(AuditEntry).where(AuditEntry.seq == checkpoint.count))
    return (e is not None and e.hash == checkpoint.hash
            and audit_chain.entry_hash(e.prev_hash, e.chained_fields()) == e.hash)


class ChainWatch:
    """The audit chain as last verified by this process, carried forward on each look: a
    page showing the chain's state verifies only the entries appended since the last look.

    A verification that fails is not remembered, so the next look reports it again. When the
    checkpoint no longer matches the log (a shorter chain, or another hash at the checkpoint's
    entry: a restored database, or tampering) the chain is walked again from the start, which
    names the first broken entry if there is one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checkpoint: Checkpoint | None = None
        self.full_walks = 0  # how many looks walked the whole chain

    def check(self, session: Session) -> Checkpoint:
        with self._lock:
            checkpoint = self._checkpoint
            if checkpoint is not None and not _still_verified(session, checkpoint):
                checkpoint = None
            if checkpoint is None:
                self.full_walks += 1
            try:
                self._checkpoint = verify_from(session, checkpoint)
            except audit_chain.AuditChainBroken:
                self._checkpoint = None
                raise
            return self._checkpoint


def page(session: Session, *, scope: Scope, office: str | None = None, action: AuditAction | str | None,
         outcome: AuditOutcome | str | None,
         before_seq: int | None, limit: int) -> list[AuditEntry]:
    """Entries newest first: exchange-wide (or one ``office``'s) for the exchange-wide scope, an
    office's own entries for its scope (``office``, if named, must be that office)."""
    require_scope(scope)
    q = select(AuditEntry)
    if not scope.is_everything:
        q = q.where(AuditEntry.office_code == scope.code)
    if office:
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
