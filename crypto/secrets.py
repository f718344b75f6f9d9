"""Secrets of two kinds, hashed two ways.

**People's passwords** are chosen by people: guessable, so their hashes must make every guess
expensive. They are stored as Argon2id hashes (RFC 9106), at a cost of about half a second of
CPU and 64 MiB per verification.

**Machine clients' secrets** (:func:`new_secret`) are 256 random bits made here, never chosen by
anyone. Nobody can guess one, so a slow hash buys nothing: recovering a secret from its SHA-256
needs a preimage of SHA-256 (about 2**256 evaluations, however many the attacker can afford).
They are stored as SHA-256 of a domain label and the secret (FIPS 180-4), which costs
microseconds. With Argon2 every token request (known client or not) cost 0.4 to 0.8 s of CPU, and
sixteen of them in parallel starved the rest of the server. The fast hash is only for secrets of
that strength: :func:`hash_client_secret` refuses anything shorter than :data:`MIN_CLIENT_SECRET`
characters, and passwords never go through it.

Hashes of client secrets written before this change are Argon2id; they still verify (at their
own cost) and :func:`upgraded_client_hash` gives the fast hash to store in their place once the
secret is known to be right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106 second recommended option, lighter on memory for API-side verification.
PRODUCTION = PasswordHasher(time_cost=3, memory_cost=64 * 1024, parallelism=1)
# For test suites only: hashes in seconds per thousand. Never for stored production secrets.
UNSAFE_FAST_FOR_TESTS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

_hasher = PRODUCTION
# A fixed hash to verify against when the person is unknown, so timing does not tell.
_DUMMY = _hasher.hash("unknown-person")

# ``new_secret`` gives 3 + 43 characters (32 random bytes, base64url).
MIN_CLIENT_SECRET = 40
CLIENT_HASH_PREFIX = "$exchange-sha256$"
_CLIENT_LABEL = b"patent-exchange client secret v1\x00"
# Compared against when the client is unknown: random, so no secret matches it.
_DUMMY_CLIENT_DIGEST = secrets.token_hex(32)


def use_hasher(hasher: PasswordHasher) -> None:
    """Switch the password hasher for new hashes (existing hashes verify with their own parameters)."""
    global _hasher, _DUMMY
    _hasher = hasher
    _DUMMY = hasher.hash("unknown-person")


def new_secret(prefix: str = "cs_") -> str:
    return prefix + secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(10)


# --- people's passwords: Argon2id --------------------------------------------------------------

def hash_password(password: str) -> str:
    """An Argon2id hash (RFC 9106) of a person's password, salted."""
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches. Always does the work of one Argon2 verification, also
    when there is no stored hash (an unknown person), so timing does not tell which exist."""
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and bool(stored_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- machine clients' secrets: SHA-256 of a 256-bit random secret -----------------------------

def _client_digest(secret: str) -> str:
    return hashlib.sha256(_CLIENT_LABEL + secret.encode("utf-8", "surrogatepass")).hexdigest()


def hash_client_secret(secret: str) -> str:
    """The stored form of a secret made by :func:`new_secret`: a fast SHA-256 (FIPS 180-4), safe
    only because the secret is 256 random bits. Refuses short secrets (a password, say)."""
    if len(secret) < MIN_CLIENT_SECRET:
        raise ValueError("a client secret is a random secret from new_secret(), not a chosen password")
    return CLIENT_HASH_PREFIX + _client_digest(secret)


def client_secret_matches(stored_hash: str | None, secret: str) -> bool:
    """True when ``secret`` matches. For the current hashes the work is one SHA-256 and one
    constant-time comparison, the same with no stored hash (an unknown client). A hash from
    before (Argon2id) verifies at its own cost until :func:`upgraded_client_hash` replaces it."""
    if stored_hash and not stored_hash.startswith(CLIENT_HASH_PREFIX):
        try:
            return PRODUCTION.verify(stored_hash, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    expected = stored_hash[len(CLIENT_HASH_PREFIX):] if stored_hash else _DUMMY_CLIENT_DIGEST
    return hmac.compare_digest(_client_digest(secret), expected) and bool(stored_hash)


def upgraded_client_hash(stored_hash: str, secret: str) -> str | None:
    """The hash to store instead of ``stored_hash`` once ``secret`` was verified against it: a
    fast hash in place of an old Argon2 one; ``None`` when nothing is to change."""
    if stored_hash.startswith(CLIENT_HASH_PREFIX) or len(secret) < MIN_CLIENT_SECRET:
        return None
    return hash_client_secret(secret)
