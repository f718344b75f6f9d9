"""Which stored bytes may be removed: blob rows (committed deposits) and pins (deposits in flight).

A deposit pins each blob it is about to write before its writer touches storage; the
transaction that commits the deposit records the blob rows and drops its pins together, so
anyone looking sees one or the other. Bytes are removed (a refused deposit's, the orphan
sweep's) only under the blob's lock, and only when neither a row nor a pin names them: a
refusal can never take away bytes that another deposit, committed or in flight, relies on.

The lock is PostgreSQL's transaction-level advisory lock on the digest. On SQLite, writers
are serialised by the database: every locked transaction here writes first (it inserts or
deletes a pin), which takes the database's write lock until the transaction ends.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from sqlalchemy import delete, exists, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from .models import Blob, BlobPin
from .storage import BlobStore, ObjectNotFound, blob_key

log = logging.getLogger(__name__)

_LOCK_CLASS = 0x626C6F62  # "blob": the advisory lock space of blob digests


def _lock(s: Session, sha256: str) -> None:
    """Hold the blob's lock until the transaction ends (PostgreSQL). On SQLite the caller's
    next statement must write: that takes the database's write lock."""
    if s.get_bind().dialect.name == "postgresql":
        objid = int.from_bytes(bytes.fromhex(sha256[:8]), "big", signed=True)
        s.execute(text("SELECT pg_advisory_xact_lock(:c, :o)"), {"c": _LOCK_CLASS, "o": objid})


def relied_on(s: Session, sha256: str) -> bool:
    """Whether a committed blob row or a pin of a deposit in flight names these bytes.

    One statement, so one snapshot: the deposit that records the row and drops its pin commits
    both at once, and two statements (under READ COMMITTED) could each miss one of them."""
    return bool(s.scalar(select(or_(exists().where(Blob.sha256 == sha256),
                                    exists().where(BlobPin.sha256 == sha256)))))


def pin(session_factory: sessionmaker, deposit_id: str, sha256: str) -> None:
    """Record that ``deposit_id`` relies on ``sha256``'s bytes from now on (committed at once)."""
    with session_factory.begin() as s:
        _lock(s, sha256)
        s.add(BlobPin(id=str(uuid.uuid4()), deposit_id=deposit_id, sha256=sha256))


def unpin_all(s: Session, deposit_id: str) -> None:
    """Drop a deposit's pins inside the transaction that records its blob rows."""
    s.execute(delete(BlobPin).where(BlobPin.deposit_id == deposit_id))


def release(session_factory: sessionmaker, store: BlobStore, deposit_id: str, sha256: str) -> bool:
    """Drop ``deposit_id``'s pin on ``sha256`` and, if nothing else relies on the bytes, remove
    them (every stored version). Returns whether bytes were removed. Storage errors propagate;
    the pin is then kept, so the orphan sweep decides later."""
    with session_factory.begin() as s:
        _lock(s, sha256)
        s.execute(delete(BlobPin).where(BlobPin.deposit_id == deposit_id, BlobPin.sha256 == sha256))
        if relied_on(s, sha256):
            return False
        store.discard(blob_key(sha256), None)
        return True


def drop_stale_pins(session_factory: sessionmaker, *, before: datetime) -> int:
    """Drop pins older than ``before``: no deposit runs that long, so their process died. Safe
    without the lock: a dropped pin only lets a later, locked look remove bytes."""
    with session_factory.begin() as s:
        return s.execute(delete(BlobPin).where(BlobPin.created_at < before)).rowcount


def remove_orphan(session_factory: sessionmaker, store: BlobStore, sha256: str, *, pins_before: datetime,
                  modified_before: datetime):
    """The orphan sweep's last look, under the lock: drop pins older than ``pins_before`` (their
    deposit died with its process), then delete the object if no row or live pin names it and it
    was not modified since ``modified_before``. Returns the deleted object's info, or None."""
    key = blob_key(sha256)
    with session_factory.begin() as s:
        _lock(s, sha256)
        stale = s.execute(delete(BlobPin).where(BlobPin.sha256 == sha256, BlobPin.created_at < pins_before)).rowcount
        if stale:
            log.warning("dropped %d stale pin(s) on %s: their deposits never ended", stale, sha256)
        if relied_on(s, sha256):
            return None
        try:
            info = store.stat(key)
        except ObjectNotFound:
            return None
        if info.last_modified is None or info.last_modified > modified_before:
            return None
        store.delete(key)
        return info
