"""Content digests that carry their algorithm.

``Repr-Digest`` follows RFC 9530 (structured-field byte sequence of the SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

SHA256 = "sha-256"


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def sha256_of(cls, data: bytes) -> "Digest":
        return cls(SHA256, hashlib.sha256(data).hexdigest())

    @property
    def raw(self) -> bytes:
        return bytes.fromhex(self.hex)

    def repr_digest_header(self) -> str:
        """The RFC 9530 ``Repr-Digest`` field value, e.g. ``sha-256=:base64:``."""
        return f"{self.algorithm}=:{base64.b64encode(self.raw).decode()}:"

    def matches(self, other: "Digest") -> bool:
        return self.algorithm == other.algorithm and hmac.compare_digest(self.hex, other.hex)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class StreamingHasher:
    """SHA-256 and byte count of a stream fed in chunks, in constant memory."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._h.update(chunk)
        self.size += len(chunk)

    def digest(self) -> Digest:
        return Digest(SHA256, self._h.hexdigest())


def parse_repr_digest(value: str) -> Digest:
    """Parse a ``Repr-Digest`` value holding a sha-256 member (RFC 9530)."""
    for member in value.split(","):
        name, _, rest = member.strip().partition("=")
        if name.strip() == SHA256 and rest.startswith(":") and rest.endswith(":"):
            return Digest(SHA256, base64.b64decode(rest[1:-1]).hex())
    raise ValueError("no sha-256 member in Repr-Digest")
