"""SQLAlchemy models. Every schema change comes with an Alembic migration in ``migrations/``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, JSONType, UTCDateTime, utcnow


class Office(Base):
    __tablename__ = "office"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSONType, default=list)
    settings: Mapped[dict] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OfficeKey(Base):
    __tablename__ = "office_key"
    __table_args__ = (UniqueConstraint("office_code", "kid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"), index=True)
    kid: Mapped[str] = mapped_column(String(128))
    alg: Mapped[str] = mapped_column(String(16))
    public_key_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revocation_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def valid_at(self, t: datetime) -> bool:
        if self.not_before is not None and t < self.not_before:
            return False
        if self.not_after is not None and t >= self.not_after:
            return False
        if self.revoked_at is not None and t >= self.revoked_at:
            return False
        return True


class Client(Base):
    __tablename__ = "client"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    office_code: Mapped[str | None] = mapped_column(ForeignKey("office.code"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(200))
    roles: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Raised when the secret is replaced or the client disabled. Each token carries the value it
    # was issued under, so tokens got with a leaked secret end with it, and re-enabling a client
    # does not bring back the tokens it held before.
    credential_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SigningKey(Base):
    """The exchange's own keys (access tokens, deposit receipts)."""

    __tablename__ = "signing_key"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    private_key_pem: Mapped[str] = mapped_column(Text)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # No longer used to sign from this time; still published until ``published_until``.
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Application(Base):
    __tablename__ = "application"
    __table_args__ = (UniqueConstraint("office_code", "number_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"))
    number: Mapped[str] = mapped_column(String(64))
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    filing_date: Mapped[date | None] = mapped_column(Date)
    title: Mapped[str | None] = mapped_column(Text)
    ipc: Mapped[list] = mapped_column(JSONType, default=list)
    pct_number: Mapped[str | None] = mapped_column(String(64))
    pct_key: Mapped[str | None] = mapped_column(String(64), index=True)
    publication_number: Mapped[str | None] = mapped_column(String(64))
    publication_key: Mapped[str | None] = mapped_column(String(64), index=True)
    publication_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    priorities: Mapped[list[PriorityClaim]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="PriorityClaim.id"
    )


class PriorityClaim(Base):
    __tablename__ = "priority_claim"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("application.id", ondelete="CASCADE"), index=True)
    office: Mapped[str] = mapped_column(String(8))
    number: Mapped[str] = mapped_column(String(64))
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    date: Mapped[date | None] = mapped_column(Date)

    application: Mapped[Application] = relationship(back_populates="priorities")


class Dossier(Base):
    __tablename__ = "dossier"
    __table_args__ = (UniqueConstraint("office_code", "manifest_sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("application.id"), index=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signature_sha256: Mapped[str] = mapped_column(String(64))
    jws: Mapped[str] = mapped_column(Text)
    manifest: Mapped[dict] = mapped_column(JSONType)
    kid: Mapped[str] = mapped_column(String(128))
    alg: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    depositor_client_id: Mapped[str | None] = mapped_column(String(64))

    application: Mapped[Application] = relationship()
    documents: Mapped[list[Document]] = relationship(
        back_populates="dossier", cascade="all, delete-orphan", order_by="Document.position"
    )
    citations: Mapped[list[Citation]] = relationship(
        back_populates="dossier", cascade="all, delete-orphan", order_by="Citation.id"
    )
    receipt: Mapped[Receipt] = relationship(back_populates="dossier", cascade="all, delete-orphan")


class Document(Base):
    __tablename__ = "document"
    __table_args__ = (UniqueConstraint("dossier_id", "document_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"))
    document_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    issued_on: Mapped[date | None] = mapped_column(Date)
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    allowable_claims: Mapped[list | None] = mapped_column(JSONType)
    translation_of: Mapped[str | None] = mapped_column(String(64))

    dossier: Mapped[Dossier] = relationship(back_populates="documents")
    blob: Mapped[Blob] = relationship()


class Citation(Base):
    __tablename__ = "citation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), index=True)
    cited: Mapped[str] = mapped_column(String(100))
    cited_key: Mapped[str] = mapped_column(String(100), index=True)
    category: Mapped[str] = mapped_column(String(2))
    claims: Mapped[list] = mapped_column(JSONType, default=list)

    dossier: Mapped[Dossier] = relationship(back_populates="citations")


class Receipt(Base):
    __tablename__ = "receipt"

    dossier_id: Mapped[str] = mapped_column(ForeignKey("dossier.id", ondelete="CASCADE"), primary_key=True)
    jws: Mapped[str] = mapped_column(Text)
    kid: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    dossier: Mapped[Dossier] = relationship(back_populates="receipt")


class Blob(Base):
    """One stored object, content-addressed. Documents of several dossiers may share one."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retained_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    integrity: Mapped[str] = mapped_column(String(16), default="unverified")


class BlobPin(Base):
    """A deposit in flight relies on a blob's bytes: from before its writer touches storage until
    its transaction commits the blob row (or it is refused). A refusal or the orphan sweep may
    remove stored bytes only when no blob row and no pin name them (``dossiers.blobs``)."""

    __tablename__ = "blob_pin"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    deposit_id: Mapped[str] = mapped_column(String(36), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditHead(Base):
    """A single row: the chain's last sequence number and hash. Locking it orders appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditEntry(Base):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_office_seq", "office_code", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(64))
    office_code: Mapped[str | None] = mapped_column(String(8))
    action: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def chained_fields(self) -> dict:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "office": self.office_code,
            "action": self.action,
            "outcome": self.outcome,
            "subject": self.subject,
            "reason": self.reason,
            "detail": self.detail,
            "request_id": self.request_id,
        }


class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports (transactional outbox)."""

    __tablename__ = "outbox_event"
    __table_args__ = (
        Index("ix_outbox_event_pending", "sent_at", "available_at"),
        # Published but not yet processed by a worker: the relay publishes these again.
        Index("ix_outbox_event_unprocessed", "sent_at", postgresql_where=text("processed_at IS NULL"),
              sqlite_where=text("processed_at IS NULL")),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a worker wrote the event's deliveries and notifications: until then it is not done,
    # whatever became of the task the relay published (lost by a broker restart, failed).
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))


class CorrespondenceKey(Base):
    """The keys an application can be linked by: its own number, each priority it claims, its
    PCT application. Two applications sharing a key correspond (one claims the other, both
    claim a common priority, or both derive from one PCT application)."""

    __tablename__ = "correspondence_key"

    application_id: Mapped[int] = mapped_column(ForeignKey("application.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))


class Agreement(Base):
    __tablename__ = "agreement"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    program: Mapped[str] = mapped_column(String(16))
    document_types: Mapped[list] = mapped_column(JSONType, default=list)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="active")
    require_corresponding: Mapped[bool] = mapped_column(default=True)
    share_unpublished: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    members: Mapped[list[AgreementMember]] = relationship(
        back_populates="agreement", cascade="all, delete-orphan", order_by="AgreementMember.office_code",
        lazy="selectin",
    )

    @property
    def member_codes(self) -> list[str]:
        return [m.office_code for m in self.members]


class AgreementMember(Base):
    __tablename__ = "agreement_member"

    agreement_id: Mapped[str] = mapped_column(ForeignKey("agreement.id", ondelete="CASCADE"), primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"), primary_key=True, index=True)

    agreement: Mapped[Agreement] = relationship(back_populates="members")


class AspecRequest(Base):
    __tablename__ = "aspec_request"
    __table_args__ = (Index("ix_aspec_request_so_status", "so_office", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    route: Mapped[str] = mapped_column(String(16))
    so_office: Mapped[str] = mapped_column(ForeignKey("office.code"))
    so_application_id: Mapped[int] = mapped_column(ForeignKey("application.id"))
    fo_office: Mapped[str] = mapped_column(ForeignKey("office.code"), index=True)
    fo_application_id: Mapped[int | None] = mapped_column(ForeignKey("application.id"), index=True)
    fo_number: Mapped[str] = mapped_column(String(64))
    relied_documents: Mapped[list] = mapped_column(JSONType, default=list)
    claim_correspondence: Mapped[list | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    reasons: Mapped[list] = mapped_column(JSONType, default=list)
    basis: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    so_application: Mapped[Application] = relationship(foreign_keys=[so_application_id])
    fo_application: Mapped[Application | None] = relationship(foreign_keys=[fo_application_id])


# --- notifications (workers/) ----------------------------------------------------------------

class WebhookSubscription(Base):
    __tablename__ = "webhook_subscription"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list] = mapped_column(JSONType, default=list)  # empty: every event
    # The Standard Webhooks secret ("whsec_…"); needed in clear to sign each delivery.
    secret: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event to one subscription. Its id is the ``webhook-id``, the same on every retry,
    so receivers deduplicate; the unique key makes the fan-out idempotent."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(ForeignKey("webhook_subscription.id", ondelete="CASCADE"), index=True)
    office_code: Mapped[str] = mapped_column(String(8), index=True)
    event_id: Mapped[str] = mapped_column(String(36))
    topic: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Watch(Base):
    """An examiner's watch on an application or its whole family, by document type."""

    __tablename__ = "watch"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    office_code: Mapped[str] = mapped_column(ForeignKey("office.code"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("application.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(16), default="family")  # application | family
    document_types: Mapped[list] = mapped_column(JSONType, default=list)  # empty: every type
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """The in-app inbox. One row per (watch or recipient, event): delivery is idempotent."""

    __tablename__ = "notification"
    __table_args__ = (UniqueConstraint("recipient", "event_id", "kind"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    office_code: Mapped[str] = mapped_column(String(8), index=True)
    recipient: Mapped[str] = mapped_column(String(64), index=True)  # a client id, or "office:<code>"
    kind: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[dict] = mapped_column(JSONType, default=dict)
    email: Mapped[str | None] = mapped_column(String(320))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StatsMonthly(Base):
    """Monthly rollups per office pair (``partner`` is "" for an office's own figures)."""

    __tablename__ = "stats_monthly"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    office_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    partner_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    deposits: Mapped[int] = mapped_column(Integer, default=0)
    documents: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    accesses: Mapped[int] = mapped_column(Integer, default=0)
    aspec_accepted: Mapped[int] = mapped_column(Integer, default=0)
    aspec_rejected: Mapped[int] = mapped_column(Integer, default=0)
    aspec_withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reminder(Base):
    """Tracking reminders already sent (overdue results, agreement expiry): sent once each."""

    __tablename__ = "reminder"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the web interface -------------------------------------------------------------------------

class WebUser(Base):
    """A person at an office (examiner, office-admin) or at the exchange (admin)."""

    __tablename__ = "web_user"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    office_code: Mapped[str | None] = mapped_column(ForeignKey("office.code"), index=True)
    roles: Mapped[list] = mapped_column(JSONType, default=list)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's token is kept."""

    __tablename__ = "web_session"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("web_user.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
