"""Request and response bodies of the HTTP API (``…Create`` in, ``…Read`` out)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from crypto.keys import OFFICE_ALGORITHMS
from dossiers.schemas import Number, UtcDateTime
from dossiers.vocab import AspecReason, AspecStatus, AuditAction, AuditOutcome, ClientRole, DocumentType, OfficeRole

OfficeCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class OfficeCreate(_In):
    code: OfficeCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    roles: list[OfficeRole] = Field(default_factory=lambda: list(OfficeRole))
    settings: dict = Field(default_factory=dict)


class OfficeRead(_Out):
    code: str
    name: str
    roles: list[OfficeRole]
    settings: dict
    created_at: datetime


class KeyCreate(_In):
    kid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
    alg: Literal[OFFICE_ALGORITHMS]  # type: ignore[valid-type]
    public_key_pem: Annotated[str, StringConstraints(min_length=1, max_length=20000)]
    not_before: UtcDateTime | None = None
    not_after: UtcDateTime | None = None


class KeyRead(_Out):
    office: str = Field(validation_alias="office_code")
    kid: str
    alg: str
    public_key_pem: str
    not_before: datetime | None
    not_after: datetime | None
    revoked_at: datetime | None
    revocation_reason: str | None
    created_at: datetime
    jwk: dict | None = None


class KeyRevoke(_In):
    revoked_at: UtcDateTime | None = None
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None


class ClientCreate(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "client"
    roles: list[ClientRole] = Field(min_length=1)


class ClientCreated(BaseModel):
    client_id: str
    client_secret: str
    office: str | None
    roles: list[str]
    name: str


class ClientRead(_Out):
    client_id: str
    office: str | None = Field(validation_alias="office_code")
    name: str
    roles: list[str]
    created_at: datetime
    disabled_at: datetime | None


class TokenResponse(BaseModel):
    access_token: str
    token_type: str
    expires_in: int
    scope: str


class DepositReceipt(BaseModel):
    dossier_id: str
    receipt: str
    received_at: datetime
    links: dict


class DocumentRead(BaseModel):
    id: str
    type: DocumentType
    title: str | None
    language: str | None
    issued_on: date | None
    media_type: str
    sha256: str
    size: int
    allowable_claims: list[int] | None
    translation_of: str | None
    href: str


class DossierRead(BaseModel):
    dossier_id: str
    office: str
    application: dict
    signed_at: datetime
    received_at: datetime
    kid: str
    alg: str
    manifest_sha256: str
    manifest: dict
    documents: list[DocumentRead]
    receipt: str
    links: dict


class DossierSummary(BaseModel):
    dossier_id: str
    office: str
    application_number: str
    signed_at: datetime
    received_at: datetime
    document_types: list[DocumentType]
    href: str


class Page(BaseModel):
    items: list
    next_cursor: str | None
    links: dict = Field(default_factory=dict)


class AuditEntryRead(_Out):
    seq: int
    at: datetime
    actor: str | None
    office: str | None = Field(validation_alias="office_code")
    action: AuditAction
    outcome: AuditOutcome
    subject: str | None
    reason: str | None
    detail: dict
    request_id: str | None
    hash: str


# --- applications, agreements, ASPEC -----------------------------------------------------------

from dossiers.schemas import ApplicationIn  # noqa: E402


class ApplicationCreate(ApplicationIn):
    office: OfficeCode | None = None


class ApplicationRead(BaseModel):
    office: str
    number: str
    number_key: str
    filing_date: date | None
    title: str | None
    ipc: list[str]
    priorities: list[dict]
    pct: str | None
    publication: dict | None
    links: dict


class FamilyMember(ApplicationRead):
    dossiers: list[dict]


class FamilyRead(BaseModel):
    application: str
    members: list[FamilyMember]
    offices: list[str]


class OfficeUpdate(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    roles: list[OfficeRole] | None = None
    settings: dict | None = None


class AgreementCreate(_In):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    program: Literal["ASPEC", "CASE", "BILATERAL"]
    members: list[str] = Field(min_length=2, max_length=200)
    document_types: list[DocumentType] = Field(min_length=1)
    valid_from: UtcDateTime
    valid_until: UtcDateTime | None = None
    require_corresponding: bool = True
    share_unpublished: bool = False


class AgreementRead(BaseModel):
    id: str
    name: str
    program: str
    members: list[str]
    document_types: list[DocumentType]
    valid_from: datetime
    valid_until: datetime | None
    status: str
    require_corresponding: bool
    share_unpublished: bool
    created_at: datetime
    updated_at: datetime


class OfficeNumber(_In):
    office: OfficeCode
    number: Number


class DocumentRef(_In):
    dossier_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    document_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ClaimLink(_In):
    claim: int = Field(ge=1)
    first_office_claim: int = Field(ge=1)
    relation: Annotated[str, StringConstraints(min_length=1, max_length=32)] = "same"


class AspecRequestCreate(_In):
    route: Literal["ASPEC", "PCT-ASPEC", "AIM"]
    application: OfficeNumber
    first_office_application: OfficeNumber
    relied_documents: list[DocumentRef] = Field(min_length=1, max_length=100)
    claim_correspondence: list[ClaimLink] | None = None
    requested_on: date | None = None


class AspecRequestRead(BaseModel):
    id: str
    route: str
    status: AspecStatus
    reasons: list[AspecReason]
    basis: str | None
    application: dict
    first_office_application: dict
    relied_documents: list[dict]
    claim_correspondence: list[dict] | None
    created_at: datetime
    decided_at: datetime | None
    withdrawn_at: datetime | None


class AccessExplanation(BaseModel):
    dossier_id: str
    office: str
    dossier_office: str
    decision: str
    rule: str
    reason: str
    documents: dict
