"""Reading dossiers back: the list of an office's own dossiers, and a document's bytes
served as stored and re-hashed on the way out (a mismatch is recorded as corruption).

Reads of one dossier or document, partners' included, go through the access policy
(:class:`dossiers.access.Gate`); this list shows the caller's own office's dossiers only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from crypto.digests import SHA256, Digest, StreamingHasher

from . import audit
from .db import utcnow
from .errors import StoredObjectCorrupt
from .models import Blob, Document, Dossier
from .scope import Scope, require_scope
from .storage import BlobStore, ObjectNotFound, StorageError
from .vocab import AuditAction, AuditOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viewer:
    actor: str
    scope: Scope
    request_id: str | None = None

    def __post_init__(self) -> None:
        require_scope(self.scope)


def visible_dossiers(viewer: Viewer) -> Select:
    """The base query of every dossier read, scoped to what ``viewer`` may see: an office its
    own; the exchange's operator (the exchange-wide scope) no dossier's content."""
    q = select(Dossier)
    if viewer.scope.is_everything:
        return q.where(false())
    return q.where(Dossier.office_code == viewer.scope.code)


def list_dossiers(s: Session, viewer: Viewer, *, after: tuple | None, limit: int,
                  office: str | None = None) -> list[Dossier]:
    q = visible_dossiers(viewer).options(selectinload(Dossier.documents), selectinload(Dossier.application))
    if office:
        q = q.where(Dossier.office_code == office)
    if after is not None:
        received_at, dossier_id = after
        q = q.where((Dossier.received_at < received_at) |
                    ((Dossier.received_at == received_at) & (Dossier.id < dossier_id)))
    q = q.order_by(Dossier.received_at.desc(), Dossier.id.desc()).limit(limit)
    return list(s.scalars(q))


def repr_digest(sha256_hex: str) -> str:
    """The RFC 9530 ``Repr-Digest`` of a stored document."""
    return Digest(SHA256, sha256_hex).repr_digest_header()


def open_verified(store: BlobStore, doc: Document, session_factory: sessionmaker, viewer: Viewer) -> Iterator[bytes]:
    """The document's bytes as stored, re-hashed as they are served.

    The size is checked before the first byte; the digest after the last. On a
    mismatch the stream ends in an error (the client sees a broken transfer, never
    wrong bytes presented as complete) and the blob is marked corrupt and audited.
    """
    from .storage import blob_key

    key = blob_key(doc.sha256)
    # Failures before the first byte are raised, not recorded here: the request's transaction
    # still holds the audit chain's head; the error handler records them after its rollback.
    where: dict[str, Any] = {"sha256": doc.sha256, "dossier_id": doc.dossier_id, "document_id": doc.document_id}
    try:
        info = store.stat(key)
    except ObjectNotFound:
        raise StoredObjectCorrupt(f"document {doc.document_id} is missing from storage",
                                  integrity_reason="missing from storage", **where) from None
    if info.size != doc.size:
        raise StoredObjectCorrupt(f"document {doc.document_id} failed its integrity check",
                                  integrity_reason=f"stored size {info.size} != {doc.size}", **where)
    def stream() -> Iterator[bytes]:
        # The last chunk is held back until the digest is checked: a mismatch then ends the
        # transfer short of Content-Length, so no client can take the bytes as complete.
        hasher = StreamingHasher()
        held: bytes | None = None
        # Opened on the first read, not before: a client that leaves before the body starts
        # must not leave an open file or connection behind.
        reader = store.open(key)
        try:
            for chunk in reader:
                hasher.update(chunk)
                if hasher.size > doc.size:
                    break
                if held is not None:
                    yield held
                held = chunk
        except StorageError as exc:
            log.error("storage failed while serving %s: %s", key, exc)
            raise
        finally:
            reader.close()
        if hasher.size != doc.size or hasher.digest().hex != doc.sha256:
            _corrupt(session_factory, doc, viewer, "digest mismatch while serving")
            raise StoredObjectCorrupt(f"document {doc.document_id} failed its integrity check")
        if held is not None:
            yield held

    return stream()


def _corrupt(session_factory: sessionmaker, doc: Document, viewer: Viewer, reason: str) -> None:
    record_corruption(session_factory, sha256=doc.sha256, dossier_id=doc.dossier_id, document_id=doc.document_id,
                      reason=reason, actor=viewer.actor, request_id=viewer.request_id)


def record_corruption(session_factory: sessionmaker, *, sha256: str, dossier_id: str | None, document_id: str | None,
                      reason: str, actor: str | None, request_id: str | None) -> None:
    """Mark the blob corrupt and audit it, in a transaction of its own. Never raises."""
    log.error("integrity failure: blob %s (%s)", sha256, reason)
    try:
        with session_factory.begin() as s:
            blob = s.get(Blob, sha256)
            if blob is not None:
                blob.integrity = "corrupt"
                blob.verified_at = utcnow()
            audit.append(s, action=AuditAction.BLOB_INTEGRITY, outcome=AuditOutcome.FAILED, actor=actor, office=None,
                         subject=sha256, reason=reason, request_id=request_id,
                         detail={"dossier_id": dossier_id, "document_id": document_id})
    except Exception:
        log.exception("could not record an integrity failure")
