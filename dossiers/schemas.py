"""The manifest an office signs (API contract), validated strictly: signed data has one shape."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from . import numbers
from .vocab import CLAIM_REPORT_TYPES, DocumentType

DOCUMENT_TYPES = tuple(DocumentType)
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


def _readable_number(v: str) -> str:
    if not numbers.fold(v):
        raise ValueError("a number needs at least one letter or digit")
    return v


def _in_utc(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("give a time zone (Z for UTC)")
    try:
        return v.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before the first day UTC can name
        raise ValueError("the instant is outside the years 1 to 9999 once converted to UTC") from None


Number = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True),
                   AfterValidator(_readable_number)]
# An instant with its time zone, held in UTC; one that UTC cannot represent is refused.
UtcDateTime = Annotated[datetime, AfterValidator(_in_utc)]
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
    ipc: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] = Field(default_factory=list,
                                                                                      max_length=200)
    priorities: list[PriorityClaimIn] = Field(default_factory=list, max_length=100)
    pct: Annotated[str, StringConstraints(pattern=r"^PCT/[A-Z]{2}\d{4}/\d{6}$")] | None = None
    publication: PublicationIn | None = None


class DocumentIn(_Strict):
    id: DocumentId
    type: DocumentType
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
    signed_at: UtcDateTime

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data):
        # PostgreSQL keeps no NUL in text or jsonb; signed data must be stored as signed.
        where = nul_in(data)
        if where is not None:
            raise ValueError(f"{where or '/'} holds a NUL character (U+0000)")
        return data

    @model_validator(mode="after")
    def _document_ids(self):
        ids = [d.id for d in self.documents]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"document ids must be unique; repeated: {', '.join(dupes)}")
        known = set(ids)
        for d in self.documents:
            if d.translation_of is not None and (d.translation_of not in known or d.translation_of == d.id):
                raise ValueError(f"document {d.id!r} translates {d.translation_of!r}, "
                                 "which is not another document of this manifest")
        return self


def nul_in(value) -> str | None:
    """The JSON pointer (RFC 6901) of the first string, key or value, holding U+0000 in
    ``value`` (parsed JSON), or ``None``. Iterative: the nesting is bounded elsewhere."""
    todo = [("", value)]
    while todo:
        pointer, v = todo.pop()
        if isinstance(v, str):
            if "\x00" in v:
                return pointer
        elif isinstance(v, dict):
            for k, item in v.items():
                if isinstance(k, str) and "\x00" in k:
                    return pointer
                todo.append((f"{pointer}/{str(k).replace('~', '~0').replace('/', '~1')}", item))
        elif isinstance(v, list):
            todo.extend((f"{pointer}/{i}", item) for i, item in enumerate(v))
    return None


def format_errors(exc) -> list[dict]:
    """Pydantic errors as ``[{"pointer": "/documents/0/sha256", "detail": "…"}]`` (RFC 6901)."""
    out = []
    for e in exc.errors(include_url=False):
        pointer = "".join(f"/{p}" for p in e.get("loc", ()))
        out.append({"pointer": pointer or "/", "detail": re.sub(r"^Value error, ", "", e.get("msg", ""))})
    return out
