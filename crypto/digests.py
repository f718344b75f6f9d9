"""Content digests that carry their algorithm.

``Repr-Digest`` follows RFC 9530 (structured-field byte sequence of the SHA-256).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

SHA256 = "sha-256"


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def repr_digest_header(self) -> str:
        """The RFC 9530 ``Repr-Digest`` field value, e.g. ``sha-256=:base64:``."""
        return f"{self.algorithm}=:{base64.b64encode(bytes.fromhex(self.hex)).decode()}:"


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
