"""The manifest an office signs (API contract), validated strictly: signed data has one shape."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

DOCUMENT_TYPES = ("SR", "WO", "ER", "ISR", "WOISA", "IPRP", "CLAIMS", "CCT", "GRANT", "REFUSAL", "OTHER")
CLAIM_REPORT_TYPES = ("WO", "ER", "WOISA", "IPRP")
CITATION_CATEGORIES = ("X", "Y", "A", "P", "E", "D", "L", "O", "T", "&")
# Served inline or as attachments; anything able to run script in a browser is refused.
MEDIA_TYPES = (
    "application/pdf",
    "application/xml",
    "text/xml",
    "text/plain",
    "image/tiff",
    "image/png",
    "image/jpeg",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
MAX_DOCUMENTS = 500
MAX_DOCUMENT_SIZE = 8 * 1024**3

OfficeCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
DocumentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Number = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
ClaimNo = Annotated[int, Field(ge=1, le=10000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityClaimIn(_Strict):
    office: OfficeCode
    number: Number
    date: date


class PublicationIn(_Strict):
    number: Number
    date: date


class ApplicationIn(_Strict):
    number: Number
    filing_date: date
    title: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    ipc: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(default_factory=list, max_length=200)
    priorities: list[PriorityClaimIn] = Field(default_factory=list, max_length=100)
    pct: Annotated[str, StringConstraints(pattern=r"^PCT/[A-Z]{2}\d{4}/\d{6}$")] | None = None
    publication: PublicationIn | None = None


class DocumentIn(_Strict):
    id: DocumentId
    type: Literal[DOCUMENT_TYPES]  # type: ignore[valid-type]
    title: Annotated[str, StringConstraints(max_length=1000)] | None = None
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
    issued_on: date | None = None
    media_type: str
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: Annotated[int, Field(ge=0, le=MAX_DOCUMENT_SIZE)]
    allowable_claims: list[ClaimNo] | None = None
    translation_of: DocumentId | None = None

    @field_validator("media_type")
    @classmethod
    def _media_type(cls, v: str) -> str:
        if v not in MEDIA_TYPES:
            raise ValueError(f"media type {v!r} is not accepted; use one of {', '.join(MEDIA_TYPES)}")
        return v

    @model_validator(mode="after")
    def _claims_only_on_reports(self):
        if self.allowable_claims is not None and self.type not in CLAIM_REPORT_TYPES:
            raise ValueError(f"allowable_claims is only for {', '.join(CLAIM_REPORT_TYPES)} documents")
        return self


class CitationIn(_Strict):
    cited: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    category: Literal[CITATION_CATEGORIES]  # type: ignore[valid-type]
    claims: list[ClaimNo] = Field(default_factory=list, max_length=1000)


class Manifest(_Strict):
    office: OfficeCode
    application: ApplicationIn
    documents: list[DocumentIn] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    citations: list[CitationIn] = Field(default_factory=list, max_length=5000)
    signed_at: datetime

    @field_validator("signed_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("signed_at needs a time zone (use Z for UTC)")
        return v.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _document_ids(self):
        ids = [d.id for d in self.documents]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"document ids must be unique; repeated: {', '.join(dupes)}")
        known = set(ids)
        for d in self.documents:
            if d.translation_of is not None and (d.translation_of not in known or d.translation_of == d.id):
                raise ValueError(f"document {d.id!r} translates {d.translation_of!r}, which is not another document of this manifest")
        return self


def format_errors(exc) -> list[dict]:
    """Pydantic errors as ``[{"pointer": "/documents/0/sha256", "detail": "…"}]`` (RFC 6901)."""
    out = []
    for e in exc.errors(include_url=False):
        pointer = "".join(f"/{p}" for p in e.get("loc", ()))
        out.append({"pointer": pointer or "/", "detail": re.sub(r"^Value error, ", "", e.get("msg", ""))})
    return out
