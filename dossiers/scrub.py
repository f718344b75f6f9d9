"""Storage integrity: re-hash stored blobs against their rows, repair retention, sweep orphans.

Both jobs are plain functions of ``(session_factory, store, …)``; the Celery tasks wrap them.
No transaction stays open while bytes are read: the blobs to check are picked in one short
transaction, each verdict is recorded in another.

A failed check (corrupt or missing) is audited and raises an ``integrity.alert`` outbox
event once per failure: a re-run (a redelivered task, the next scheduled scrub) that finds
the same failure, already reported by the scrub, records the time of the check and nothing
else. A failure first seen by a download (``dossiers.retrieval`` audits it but sends no alert)
is alerted by the next scrub.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crypto.digests import StreamingHasher
from dossiers import audit, blobs, outbox
from dossiers.db import utcnow
from dossiers.models import AuditEntry, Blob, Document
from dossiers.storage import (
    BlobStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectRetained,
    StorageError,
    StorageUnavailable,
)
from dossiers.vocab import AuditAction, AuditOutcome, InternalTopic

log = logging.getLogger(__name__)

ACTOR = "worker:scrub"
OK, CORRUPT, MISSING = "ok", "corrupt", "missing"
ALERT_TOPIC = InternalTopic.INTEGRITY_ALERT
PREFIX = "sha256/"
# S3 keeps retain-until dates to the millisecond, the database to the microsecond: a stored
# date this close below the recorded one is the same date, not a retention to repair.
RETENTION_SLACK = timedelta(seconds=1)
SWEEP_BATCH = 500
# A live upload touches its temporary file at least every body idle timeout (seconds); an hour
# untouched is a writer that died with its process.
PARTIAL_GRACE = timedelta(hours=1)


@dataclass
class ScrubResult:
    checked: int = 0
    ok: int = 0
    corrupt: int = 0
    missing: int = 0
    retention_repaired: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class SweepResult:
    examined: int = 0
    deleted: int = 0
    kept_retained: int = 0
    partial_removed: int = 0
    stale_pins: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Due:
    sha256: str
    key: str
    size: int
    retained_until: datetime | None


class _Stop(Exception):
    """Storage is unavailable: end the run, report what was done."""


# --- scrub ---------------------------------------------------------------------------------------

def scrub(session_factory: sessionmaker, store: BlobStore, *, limit: int = 1000,
          now: datetime | None = None) -> ScrubResult:
    """Re-hash up to ``limit`` blobs, least recently verified first (never verified first).

    Each blob's stored size and SHA-256 are compared with its row, read as a stream in
    constant memory; ``blob.integrity`` and ``blob.verified_at`` record the verdict. For a
    blob that verifies, COMPLIANCE retention is re-applied where storage holds less than the
    row records (the deposit retains after its commit, and a failure there is logged only).
    ``StorageUnavailable`` ends the run early and is reported in ``errors``, never raised.
    """
    now = now or utcnow()
    result = ScrubResult()
    with session_factory.begin() as s:
        due = [_Due(*row) for row in s.execute(
            select(Blob.sha256, Blob.key, Blob.size, Blob.retained_until)
            .order_by(Blob.verified_at.asc().nulls_first(), Blob.sha256)
            .limit(limit))]
    for blob in due:
        try:
            state, reason, info = _check(store, blob)
        except _Stop as exc:
            result.errors.append(str(exc))
            log.warning("scrub stopped early: %s", exc)
            break
        except StorageError as exc:
            # One object the store cannot answer for (not an outage): leave it unverified, go on.
            result.errors.append(f"{blob.key}: {exc}")
            continue
        _record(session_factory, blob, state, reason, now)
        result.checked += 1
        setattr(result, state, getattr(result, state) + 1)
        if state != OK:
            continue
        try:
            if _repair_retention(store, blob, info, now):
                result.retention_repaired += 1
        except _Stop as exc:
            result.errors.append(str(exc))
            log.warning("scrub stopped early: %s", exc)
            break
        except StorageError as exc:
            result.errors.append(f"retention of {blob.key}: {exc}")
    return result


def _check(store: BlobStore, blob: _Due) -> tuple[str, str | None, ObjectInfo | None]:
    """The verdict on one blob: ``(state, reason, stat)``."""
    try:
        info = store.stat(blob.key)
        if info.size != blob.size:
            return CORRUPT, f"stored size {info.size} != {blob.size}", info
        hasher = StreamingHasher()
        reader = store.open(blob.key)
        try:
            for chunk in reader:
                hasher.update(chunk)
                if hasher.size > blob.size:
                    break  # replaced since the stat; no need to read the rest
        finally:
            reader.close()
    except ObjectNotFound:
        return MISSING, "missing from storage", None
    except StorageUnavailable as exc:
        raise _Stop(f"storage unavailable at {blob.key}: {exc}") from None
    if hasher.size > blob.size:
        return CORRUPT, f"stored size exceeds {blob.size}", info
    if hasher.size != blob.size:
        return CORRUPT, f"stored size {hasher.size} != {blob.size}", info
    if hasher.digest().hex != blob.sha256:
        return CORRUPT, f"stored sha256 {hasher.digest().hex} != {blob.sha256}", info
    return OK, None, info


def _repair_retention(store: BlobStore, blob: _Due, info: ObjectInfo | None, now: datetime) -> bool:
    """Re-apply the recorded retention if storage holds less. Only for a verified object: locking
    bytes that failed their check would stand in the way of restoring the right ones."""
    want = blob.retained_until
    if want is None or want <= now or info is None:
        return False
    if info.retained_until is not None and info.retained_until >= want - RETENTION_SLACK:
        return False
    try:
        store.retain(blob.key, want)
        after = store.stat(blob.key).retained_until
    except StorageUnavailable as exc:
        raise _Stop(f"storage unavailable retaining {blob.key}: {exc}") from None
    # A store without object lock accepts retain() and keeps nothing: not a repair.
    return after is not None and after >= want - RETENTION_SLACK


def _record(session_factory: sessionmaker, blob: _Due, state: str, reason: str | None, now: datetime) -> None:
    with session_factory.begin() as s:
        q = select(Blob).where(Blob.sha256 == blob.sha256)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()  # two scrubs at once: the second waits, then sees the first's verdict
        row = s.scalars(q).first()
        if row is None:
            return  # the blob went away while it was being read
        previous = row.integrity
        row.integrity = state
        row.verified_at = now
        if state == OK:
            if previous in (CORRUPT, MISSING):
                audit.append(s, action=AuditAction.BLOB_INTEGRITY, outcome=AuditOutcome.RESTORED,
                             actor=ACTOR, subject=blob.sha256,
                             detail={"key": blob.key, "previous": previous})
            return
        if previous == state and _already_reported(s, blob.sha256, reason):
            return
        dossiers = sorted(set(s.scalars(select(Document.dossier_id).where(Document.sha256 == blob.sha256))))
        outbox.emit(s, ALERT_TOPIC, {"sha256": blob.sha256, "state": state, "reason": reason,
                                     "dossiers": dossiers})
        audit.append(s, action=AuditAction.BLOB_INTEGRITY, outcome=AuditOutcome.FAILED,
                     actor=ACTOR, subject=blob.sha256,
                     reason=reason, detail={"key": blob.key, "state": state, "dossiers": dossiers})


def _already_reported(s: Session, sha256: str, reason: str | None) -> bool:
    """Whether the latest integrity entry for this blob is the scrub's report of this failure."""
    last = s.execute(
        select(AuditEntry.actor, AuditEntry.outcome, AuditEntry.reason)
        .where(AuditEntry.action == AuditAction.BLOB_INTEGRITY, AuditEntry.subject == sha256)
        .order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    return last is not None and tuple(last) == (ACTOR, "failed", reason)


# --- orphan sweep --------------------------------------------------------------------------------

def sweep_orphans(session_factory: sessionmaker, store: BlobStore, *, grace: timedelta = timedelta(hours=24),
                  partial_grace: timedelta = PARTIAL_GRACE, now: datetime | None = None) -> SweepResult:
    """Delete stored objects under ``sha256/`` that no blob row or live deposit names and that are
    older than ``grace``; first remove partial uploads untouched for ``partial_grace`` (temporary
    files, incomplete multipart uploads: what a process killed mid-upload leaves).

    A deposit writes its objects before the transaction that records their rows commits, so
    a young object without a row may be one in flight: it is kept. Objects under retention
    are kept (and counted). ``StorageUnavailable`` ends the run and is reported in ``errors``.
    """
    now = now or utcnow()
    cutoff = now - grace
    result = SweepResult()
    batch: list[ObjectInfo] = []
    result.stale_pins = blobs.drop_stale_pins(session_factory, before=cutoff)
    try:
        result.partial_removed = store.sweep_partial(now - partial_grace)
    except StorageUnavailable as exc:
        result.errors.append(str(exc))
        log.warning("orphan sweep stopped early: %s", exc)
        return result
    except StorageError as exc:
        result.errors.append(f"partial uploads: {exc}")
    try:
        for info in store.list(PREFIX):
            result.examined += 1
            batch.append(info)
            if len(batch) >= SWEEP_BATCH:
                _sweep_batch(session_factory, store, batch, cutoff, result)
                batch = []
        if batch:
            _sweep_batch(session_factory, store, batch, cutoff, result)
    except (StorageUnavailable, _Stop) as exc:
        result.errors.append(str(exc))
        log.warning("orphan sweep stopped early: %s", exc)
    return result


def _known(session_factory: sessionmaker, keys: list[str]) -> set[str]:
    with session_factory.begin() as s:
        return set(s.scalars(select(Blob.key).where(Blob.key.in_(keys))))


def _old(info: ObjectInfo, cutoff: datetime) -> bool:
    # No modification time: its age is unknown, so it may be in flight.
    return info.last_modified is not None and info.last_modified <= cutoff


def _sweep_batch(session_factory: sessionmaker, store: BlobStore, batch: list[ObjectInfo], cutoff: datetime,
                 result: SweepResult) -> None:
    known = _known(session_factory, [o.key for o in batch])
    for info in batch:
        if info.key in known or not _old(info, cutoff):
            continue
        try:
            # The last look happens under the blob's lock (``dossiers.blobs``): no deposit can
            # pin these bytes meanwhile, and pins as old as the grace belong to dead deposits.
            gone = blobs.remove_orphan(session_factory, store, info.key.rsplit("/", 1)[-1],
                                       pins_before=cutoff, modified_before=cutoff)
        except ObjectRetained:
            result.kept_retained += 1
            continue
        except ObjectNotFound:
            continue
        except StorageUnavailable as exc:
            raise _Stop(f"storage unavailable at {info.key}: {exc}") from None
        except StorageError as exc:
            result.errors.append(f"{info.key}: {exc}")
            continue
        if gone is None:
            continue
        result.deleted += 1
        with session_factory.begin() as s:
            audit.append(s, action=AuditAction.BLOB_SWEEP, outcome=AuditOutcome.DELETED, actor=ACTOR, subject=info.key,
                         reason="no blob row", detail={
                             "size": gone.size,
                             "last_modified": gone.last_modified.isoformat() if gone.last_modified else None})
