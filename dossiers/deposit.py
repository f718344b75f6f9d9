"""Receiving a signed dossier: verify the manifest, stream each document into the blob store
while hashing it, then record everything in one transaction. All or nothing.

The HTTP layer drives a :class:`Deposit` part by part; the database is touched in two
short units of work (key look-up, final commit) so that no transaction stays open
while gigabytes arrive.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crypto import jws, receipts
from crypto.digests import StreamingHasher
from crypto.errors import AlgorithmNotAllowed, KeyInvalid, MalformedJWS, SignatureInvalid
from crypto.keys import OFFICE_ALGORITHMS, PublicKey

from . import audit, blobs, outbox, registry, signing_keys
from .db import utcnow
from .errors import (
    AlgorithmRefused,
    DepositRefused,
    DocumentDigestMismatch,
    DocumentMissing,
    DocumentSizeMismatch,
    DocumentUnexpected,
    DomainError,
    KeyNotValid,
    KeyRevoked,
    KeyUnknown,
    ManifestInvalid,
    ManifestMalformed,
    OfficeMismatch,
    SignatureRefused,
    SignedInFuture,
    StorageFailure,
)
from .models import Blob, Citation, Document, Dossier, OfficeKey, Receipt
from .schemas import DocumentIn, Manifest, format_errors
from .storage import BlobStore, BlobWriter, ObjectNotFound, StorageError, blob_key
from .vocab import AuditAction, AuditOutcome, Topic

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Caller:
    actor: str
    office: str | None
    request_id: str | None = None


@dataclass(frozen=True)
class DepositResult:
    dossier_id: str
    receipt: str
    created: bool
    received_at: datetime


class _HashOnly:
    """Stands in for a writer when the bytes are already stored: hash, keep nothing."""

    def write(self, chunk: bytes) -> None:
        pass

    def commit(self):
        return None

    def abort(self) -> None:
        pass


@dataclass
class _Part:
    doc: DocumentIn
    writer: BlobWriter | _HashOnly
    fresh: bool  # bytes not yet recorded: pinned by this deposit while it is in flight
    repair: bool = False  # recorded, but the stored bytes are missing or failed their check
    hasher: StreamingHasher = field(default_factory=StreamingHasher)
    done: bool = False

    def write(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        if self.hasher.size > self.doc.size:
            raise DocumentSizeMismatch(
                f"document {self.doc.id!r} is longer than the {self.doc.size} bytes the manifest declares",
                document=self.doc.id,
            )
        try:
            self.writer.write(chunk)
        except StorageError as exc:
            raise StorageFailure(f"storing document {self.doc.id!r} failed: {exc}") from None


class Deposit:
    def __init__(self, session_factory: sessionmaker, store: BlobStore, caller: Caller, *,
                 issuer: str, retention: timedelta):
        self._sf = session_factory
        self._store = store
        self.caller = caller
        self._issuer = issuer
        self._retention = retention
        self.manifest: Manifest | None = None
        self.jws_text: str | None = None
        self.manifest_sha256: str | None = None
        self.kid: str | None = None
        self.alg: str | None = None
        self.existing: DepositResult | None = None
        self.id = str(uuid.uuid4())  # names this deposit's pins on the blobs it writes
        self._parts: dict[str, _Part] = {}
        self._known_blobs: dict[str, str] = {}  # sha256 -> recorded integrity
        self._pinned: set[str] = set()

    # --- the manifest ------------------------------------------------------------------------

    def accept_manifest(self, token: str) -> None:
        """Verify the signed manifest and remember it; raise a :class:`DepositRefused` leaf."""
        token = token.strip()
        try:
            header, payload = jws.split_compact(token)
        except MalformedJWS as exc:
            raise ManifestMalformed(str(exc)) from None
        self.manifest_sha256 = hashlib.sha256(payload).hexdigest()
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in OFFICE_ALGORITHMS:
            raise AlgorithmRefused(f"alg {alg!r} is not accepted; use one of {', '.join(OFFICE_ALGORITHMS)}")
        if not isinstance(kid, str) or not kid or not kid.isprintable():
            raise ManifestMalformed("the JWS header has no 'kid' naming a registered key")
        try:
            claimed = jws.loads_json(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            why = f" ({exc})" if "nested" in str(exc) else ""
            raise ManifestInvalid(f"the manifest is not valid JSON{why}") from None
        if not isinstance(claimed, dict):
            raise ManifestInvalid("the manifest is not a JSON object")
        office = claimed.get("office")
        if not isinstance(office, str) or office != self.caller.office:
            raise OfficeMismatch(
                f"the manifest is for office {office!r}; this client deposits for {self.caller.office!r}"
            )
        with self._sf() as s:
            key_row = s.scalars(select(OfficeKey).where(OfficeKey.office_code == office, OfficeKey.kid == kid)).first()
            if key_row is None:
                raise KeyUnknown(f"office {office} has no key {kid!r}")
            s.expunge(key_row)
        if key_row.alg != alg:
            raise AlgorithmRefused(f"key {kid!r} is registered for {key_row.alg}, the JWS says {alg}")
        try:
            verified = jws.verify(token, PublicKey(kid, key_row.alg, key_row.public_key_pem), algorithms=[key_row.alg])
        except (SignatureInvalid, AlgorithmNotAllowed, KeyInvalid, MalformedJWS) as exc:
            raise SignatureRefused(str(exc)) from None
        try:
            manifest = Manifest.model_validate_json(verified)
        except ValidationError as exc:
            raise ManifestInvalid("the manifest does not have the required shape", errors=format_errors(exc)) from None
        now = utcnow()
        if manifest.signed_at > now + CLOCK_SKEW:
            raise SignedInFuture(f"signed_at {manifest.signed_at.isoformat()} is in the future")
        for when, label in ((manifest.signed_at, "signed_at"), (now, "receipt")):
            if key_row.revoked_at is not None and when >= key_row.revoked_at:
                raise KeyRevoked(f"key {kid!r} was revoked at {key_row.revoked_at.isoformat()}, before {label}")
            if not key_row.valid_at(when):
                raise KeyNotValid(f"key {kid!r} is not valid at {label} ({when.isoformat()})")
        self.manifest, self.jws_text, self.kid, self.alg = manifest, token, kid, alg
        with self._sf() as s:
            self.existing = self._find_existing(s)
            digests = {d.sha256 for d in manifest.documents}
            self._known_blobs = dict(s.execute(select(Blob.sha256, Blob.integrity)
                                               .where(Blob.sha256.in_(digests))).all())

    def _find_existing(self, s: Session | None = None) -> DepositResult | None:
        if s is None:
            with self._sf() as s:
                return self._find_existing(s)
        row = s.execute(
            select(Dossier.id, Receipt.jws, Dossier.received_at).join(Receipt, Receipt.dossier_id == Dossier.id)
            .where(Dossier.office_code == self.caller.office, Dossier.manifest_sha256 == self.manifest_sha256)
        ).first()
        return DepositResult(row[0], row[1], False, row[2]) if row is not None else None

    # --- the documents -----------------------------------------------------------------------

    @property
    def expected(self) -> dict[str, DocumentIn]:
        assert self.manifest is not None
        return {d.id: d for d in self.manifest.documents}

    def open_part(self, name: str) -> _Part:
        doc = self.expected.get(name)
        if doc is None:
            raise DocumentUnexpected(f"part {name!r} is not a document of the manifest", part=name)
        if name in self._parts:
            raise DocumentUnexpected(f"part {name!r} was sent twice", part=name)
        try:
            if self.existing is not None or (doc.sha256 in self._known_blobs and self._stored_intact(doc)):
                part = _Part(doc, _HashOnly(), fresh=False)
            elif doc.sha256 in self._known_blobs:
                part = _Part(doc, self._store.writer(blob_key(doc.sha256), repair=True), fresh=False, repair=True)
            else:
                if doc.sha256 not in self._pinned:
                    blobs.pin(self._sf, self.id, doc.sha256)
                    self._pinned.add(doc.sha256)
                part = _Part(doc, self._store.writer(blob_key(doc.sha256)), fresh=True)
        except StorageError as exc:
            raise StorageFailure(f"document storage is unavailable: {exc}") from None
        self._parts[name] = part
        return part

    def _stored_intact(self, doc: DocumentIn) -> bool:
        """Whether recorded bytes can be relied on as stored: not found missing or corrupt by a
        check, and present at their size. Otherwise this upload repairs them."""
        if self._known_blobs[doc.sha256] in ("missing", "corrupt"):
            return False
        try:
            return self._store.stat(blob_key(doc.sha256)).size == doc.size
        except ObjectNotFound:
            return False

    def close_part(self, part: _Part) -> None:
        doc = part.doc
        if part.hasher.size != doc.size:
            raise DocumentSizeMismatch(
                f"document {doc.id!r} has {part.hasher.size} bytes; the manifest declares {doc.size}", document=doc.id
            )
        digest = part.hasher.digest()
        if digest.hex != doc.sha256:
            raise DocumentDigestMismatch(
                f"document {doc.id!r} has sha256 {digest.hex}; the manifest declares {doc.sha256}", document=doc.id
            )
        try:
            part.writer.commit()
        except StorageError as exc:
            raise StorageFailure(f"storing document {doc.id!r} failed: {exc}") from None
        part.done = True

    # --- the end -----------------------------------------------------------------------------

    def complete(self) -> DepositResult:
        if self.existing is not None:
            return self.existing
        missing = [i for i in self.expected if i not in self._parts or not self._parts[i].done]
        if missing:
            raise DocumentMissing(f"no part for document(s): {', '.join(missing)}", documents=missing)
        try:
            result = self._record()
        except IntegrityError:
            # The same manifest, deposited concurrently, committed first.
            existing = self._find_existing()
            if existing is None:
                raise
            self.existing = existing
            self._release_pins()  # the first deposit recorded the same blobs
            return existing
        self._pinned.clear()  # dropped by the recording transaction
        self._apply_retention()
        return result

    def _record(self) -> DepositResult:
        m = self.manifest
        assert m is not None and self.jws_text is not None
        with self._sf.begin() as s:
            app = registry.upsert_application(s, m.office, m.application)
            self._insert_blobs(s)
            blobs.unpin_all(s, self.id)
            self._record_repairs(s)
            received_at = utcnow()
            dossier = Dossier(
                id=str(uuid.uuid4()),
                office_code=m.office,
                application_id=app.id,
                manifest_sha256=self.manifest_sha256,
                signature_sha256=hashlib.sha256(self.jws_text.encode()).hexdigest(),
                jws=self.jws_text,
                manifest=json.loads(jws.split_compact(self.jws_text)[1]),
                kid=self.kid,
                alg=self.alg,
                signed_at=m.signed_at,
                received_at=received_at,
                depositor_client_id=self.caller.actor,
            )
            for pos, d in enumerate(m.documents):
                dossier.documents.append(Document(
                    document_id=d.id, position=pos, type=d.type, title=d.title, language=d.language,
                    issued_on=d.issued_on, media_type=d.media_type, sha256=d.sha256, size=d.size,
                    allowable_claims=list(d.allowable_claims) if d.allowable_claims is not None else None,
                    translation_of=d.translation_of,
                ))
            for c in m.citations:
                dossier.citations.append(Citation(
                    cited=c.cited, cited_key=registry.citation_key(c.cited), category=c.category, claims=list(c.claims)
                ))
            s.add(dossier)
            s.flush()
            key = signing_keys.current(s)
            assert self.manifest_sha256 is not None  # set when the manifest was accepted
            token = receipts.issue(receipts.Receipt(
                dossier_id=dossier.id, office=m.office, manifest_sha256=self.manifest_sha256,
                signature_sha256=dossier.signature_sha256, received_at=receipts.format_time(received_at),
                issuer=self._issuer,
            ), key)
            s.add(Receipt(dossier_id=dossier.id, jws=token, kid=key.kid, received_at=received_at))
            outbox.emit(s, Topic.DOSSIER_DEPOSITED, {
                "dossier_id": dossier.id, "office": m.office, "application": m.application.number,
                "document_types": sorted({d.type for d in m.documents}),
            })
            audit.append(
                s, action=AuditAction.DOSSIER_DEPOSIT, outcome=AuditOutcome.ACCEPTED,
                actor=self.caller.actor, office=m.office,
                subject=dossier.id, request_id=self.caller.request_id,
                detail={"manifest_sha256": self.manifest_sha256, "kid": self.kid, "documents": len(m.documents),
                        "bytes": sum(d.size for d in m.documents), "application": m.application.number},
            )
            return DepositResult(dossier.id, token, True, received_at)

    def _insert_blobs(self, s: Session) -> None:
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        now = utcnow()
        self._retain_until = now + self._retention
        rows = {p.doc.sha256: {"sha256": p.doc.sha256, "key": blob_key(p.doc.sha256), "size": p.doc.size,
                               "integrity": "unverified", "created_at": now, "retained_until": self._retain_until}
                for p in self._parts.values()}
        if not rows:
            return
        inserted = s.execute(insert(Blob).values(list(rows.values()))
                             .on_conflict_do_nothing(index_elements=["sha256"])).rowcount  # type: ignore[attr-defined]
        if inserted != len(rows):  # a blob shared with an earlier dossier: its retention runs from now too
            s.execute(update(Blob).where(Blob.sha256.in_(list(rows)), Blob.retained_until < self._retain_until)
                      .values(retained_until=self._retain_until))

    def _record_repairs(self, s: Session) -> None:
        """Bytes that failed a check and came again, verified against their digest, are whole."""
        for sha in sorted({p.doc.sha256 for p in self._parts.values() if p.repair}):
            blob = s.get(Blob, sha, with_for_update=s.get_bind().dialect.name == "postgresql")
            if blob is None:
                continue
            previous = blob.integrity
            blob.integrity, blob.verified_at = "ok", utcnow()
            audit.append(s, action=AuditAction.BLOB_INTEGRITY, outcome=AuditOutcome.RESTORED, actor=self.caller.actor,
                         office=self.caller.office, subject=sha, request_id=self.caller.request_id,
                         detail={"key": blob.key, "previous": previous, "by": "re-deposit"})

    def _apply_retention(self) -> None:
        """COMPLIANCE retention once the deposit is committed (before, a refused deposit would
        leave locked orphans). The deposit's transaction recorded ``blob.retained_until``; the
        integrity scrub checks storage against it and re-applies what a failure here missed."""
        for sha in {p.doc.sha256 for p in self._parts.values()}:
            try:
                self._store.retain(blob_key(sha), self._retain_until)
            except StorageError as exc:
                log.warning("retention not applied to %s: %s; the scrub will repair it", sha, exc)

    # --- refusal -----------------------------------------------------------------------------

    def _release_pins(self) -> None:
        """Drop this deposit's pins; remove bytes it wrote that nothing else relies on."""
        for sha in sorted(self._pinned):
            try:
                blobs.release(self._sf, self._store, self.id, sha)
                self._pinned.discard(sha)
            except Exception:
                log.exception("releasing blob %s of a refused deposit failed; the orphan sweep will", sha)

    def refuse(self, exc: BaseException) -> None:
        """Undo whatever reached storage and record the refusal. Never raises.

        Only bytes that no committed or in-flight deposit relies on are removed (``blobs``):
        another deposit of the same document may be uploading, or acknowledged, meanwhile."""
        for part in self._parts.values():
            if not part.done:
                try:
                    part.writer.abort()
                except Exception:
                    log.exception("aborting a refused deposit's upload failed; the sweep will remove it")
        self._release_pins()
        try:
            code = exc.code if isinstance(exc, DomainError) else "internal-error"
            detail: dict[str, object] = {"manifest_sha256": self.manifest_sha256, "kid": self.kid}
            if isinstance(exc, DepositRefused) and exc.extra:
                detail.update({k: v for k, v in exc.extra.items() if isinstance(v, str | int | list)})
            with self._sf.begin() as s:
                audit.append(
                    s, action=AuditAction.DOSSIER_DEPOSIT, outcome=AuditOutcome.REFUSED, actor=self.caller.actor,
                    office=self.caller.office, subject=self.manifest_sha256, reason=code,
                    detail={**detail, "message": str(exc)[:500]}, request_id=self.caller.request_id,
                )
        except Exception:
            log.exception("could not audit a refused deposit")
