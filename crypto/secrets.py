"""Client secrets: generated with ``secrets``, stored only as Argon2id hashes (RFC 9106)."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106 second recommended option, lighter on memory for API-side verification.
PRODUCTION = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
# For test suites only: hashes in seconds per thousand. Never for stored production secrets.
UNSAFE_FAST_FOR_TESTS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

_hasher = PRODUCTION
# A fixed hash to verify against when the client is unknown, so timing does not tell.
_DUMMY = _hasher.hash("unknown-client")


def use_hasher(hasher: PasswordHasher) -> None:
    """Switch the hasher for new hashes (existing hashes verify with their own parameters)."""
    global _hasher, _DUMMY
    _hasher = hasher
    _DUMMY = hasher.hash("unknown-client")


def new_secret(prefix: str = "cs_") -> str:
    return prefix + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def secret_matches(stored_hash: str | None, secret: str) -> bool:
    """True when ``secret`` matches. Always does the work of one verification."""
    try:
        return _hasher.verify(stored_hash or _DUMMY, secret) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
