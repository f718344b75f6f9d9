"""A hash chain over audit entries, so that a removed or altered entry is detected.

Each entry's hash is SHA-256 over the previous entry's hash and the canonical JSON
(RFC 8785-style: sorted keys, no insignificant white space) of its own fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import AuditChainBroken

GENESIS = "0" * 64


def canonical(fields: Mapping) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_hash(prev_hash: str, fields: Mapping) -> str:
    h = hashlib.sha256()
    h.update(prev_hash.encode("ascii"))
    h.update(b"\n")
    h.update(canonical(fields))
    return h.hexdigest()


@dataclass(frozen=True)
class ChainedEntry:
    seq: int
    fields: Mapping
    prev_hash: str
    hash: str


def verify_chain(entries: Iterable[ChainedEntry], *, start_hash: str = GENESIS, start_seq: int = 1) -> int:
    """Walk entries in ``seq`` order; return how many verified or raise :class:`AuditChainBroken`."""
    expected_prev, expected_seq, count = start_hash, start_seq, 0
    for e in entries:
        if e.seq != expected_seq:
            raise AuditChainBroken(expected_seq, f"entry {expected_seq} is missing (next is {e.seq})")
        if e.prev_hash != expected_prev:
            raise AuditChainBroken(e.seq, "its previous-hash does not match the entry before it")
        if entry_hash(e.prev_hash, e.fields) != e.hash:
            raise AuditChainBroken(e.seq, "its content does not match its hash")
        expected_prev, expected_seq, count = e.hash, e.seq + 1, count + 1
    return count
