"""The blob store: one protocol, two implementations (S3 through ``minio``, a local directory).

Object keys derive from the content digest. A writer makes its object visible
only on :meth:`BlobWriter.commit`; an aborted writer leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

CHUNK_SIZE = 1024 * 1024


class StorageError(Exception):
    """Base of the store's errors; vendor and OS errors are mapped to these at the adapter."""

    code = "storage-error"


class StorageUnavailable(StorageError):
    code = "storage-unavailable"


class ObjectNotFound(StorageError):
    code = "object-not-found"


class ObjectRetained(StorageError):
    """The object is under retention and cannot be deleted or overwritten."""

    code = "object-retained"


class StorageConfigError(StorageError):
    code = "storage-config"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime | None = None
    retained_until: datetime | None = None
    version: str | None = None


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> ObjectInfo:
        """Make the object visible under its key; return what was stored."""

    def abort(self) -> None:
        """Discard everything written; nothing becomes visible. Safe to call twice."""


class BlobReader(Protocol):
    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class BlobStore(Protocol):
    kind: str

    def ensure_ready(self) -> None:
        """Create the bucket or directory if missing (idempotent)."""

    def ping(self) -> None:
        """Raise :class:`StorageUnavailable` unless the store answers."""

    def writer(self, key: str, *, repair: bool = False) -> BlobWriter:
        """A writer for ``key``. An object already there is kept as it is, unless ``repair``
        (the caller verified the new bytes against their digest and the stored ones failed)."""

    def open(self, key: str, chunk_size: int = CHUNK_SIZE) -> BlobReader: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def exists(self, key: str) -> bool: ...

    def retain(self, key: str, until: datetime) -> None:
        """Put the object under COMPLIANCE retention until ``until`` (WORM on S3)."""

    def delete(self, key: str) -> None:
        """Remove every version of the object; :class:`ObjectRetained` if it is locked."""

    def discard(self, key: str, version: str | None) -> None:
        """Remove exactly the object version a writer of ours committed, or with ``version``
        None every version (only once nothing relies on the bytes: ``dossiers.blobs``).
        Never raises for a missing object."""

    def sweep_partial(self, older_than: datetime) -> int:
        """Remove what uploads cut short by a crash left behind (temporary files, incomplete
        multipart uploads) untouched since ``older_than``; return how many."""

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]: ...


def blob_key(sha256_hex: str) -> str:
    """Object key of a document's bytes: derived from the content digest."""
    h = sha256_hex.lower()
    return f"sha256/{h[:2]}/{h[2:4]}/{h}"


def check_key(key: str) -> str:
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
        raise StorageConfigError(f"invalid object key {key!r}")
    return key


def store_from_url(url: str) -> BlobStore:
    """``file:///path`` or ``s3://KEY:SECRET@host:port/bucket?secure=false&region=…``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from .local import LocalStore

        return LocalStore(unquote(parts.path))
    if parts.scheme == "s3":
        from .s3 import S3Store

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        bucket = parts.path.strip("/")
        if not bucket or not parts.hostname:
            raise StorageConfigError("an s3:// storage URL needs a host and a bucket")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        return S3Store(
            endpoint=host,
            access_key=unquote(parts.username or ""),
            secret_key=unquote(parts.password or ""),
            bucket=bucket,
            secure=query.get("secure", "true").lower() not in ("false", "0", "no"),
            region=query.get("region", "us-east-1"),
            object_lock=query.get("object_lock", "true").lower() not in ("false", "0", "no"),
        )
    raise StorageConfigError(f"unsupported storage URL scheme {parts.scheme!r}")
