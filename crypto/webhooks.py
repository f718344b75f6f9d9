"""Webhook signatures after the Standard Webhooks convention (Standard Webhooks 1.0.0,
https://www.standardwebhooks.com, spec/standard-webhooks.md, "Verifying webhook authenticity").

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}`` (section "Signature
scheme"). Two signature kinds are produced and accepted:

- ``v1``: HMAC-SHA256 keyed with the base64-decoded part of a ``whsec_`` secret
  (24 to 64 random bytes, the spec's 192 to 512 bits);
- ``v1a``: Ed25519 (RFC 8032). The spec serialises the key pair as base64 behind ``whsk_``
  (secret key) and ``whpk_`` (public key) without fixing the byte layout; here ``whsk_``
  holds the 32-byte RFC 8032 private key and ``whpk_`` the 32-byte public key. A 64-byte
  libsodium-style secret key (private key then public key) is accepted on input when its
  two halves agree.

:func:`verify` returns ``None`` or raises :class:`~crypto.errors.WebhookSignatureInvalid`;
it never returns a bool. The accepted kinds follow from the keys the caller passes (a
``secret`` accepts ``v1``, a ``public_key`` accepts ``v1a``), never from the request.
Malformed keys raise :class:`~crypto.errors.KeyInvalid`; errors of ``cryptography`` are
mapped here and never leave the module.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _secrets
import time
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import KeyInvalid, WebhookSignatureInvalid

__all__ = [
    "HEADER_ID",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "headers",
    "new_secret",
    "new_signing_keypair",
    "public_key_of",
    "sign_v1",
    "sign_v1a",
    "verify",
]

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"

SECRET_PREFIX = "whsec_"
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"

MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
# A header with more entries than this is refused before any work: each v1a entry costs an
# Ed25519 verification, and rotation needs two or three signatures, not hundreds.
MAX_SIGNATURES = 16

# The id is not user controlled here, but the spec asks that it never hold a "." (which
# would make the signed content ambiguous); whitespace and controls would break the header.
_MSG_ID = re.compile(r"[A-Za-z0-9_\-:+=/]{1,256}", re.ASCII)
_TIMESTAMP = re.compile(r"[0-9]{1,15}", re.ASCII)


def _b64decode(text: str) -> bytes:
    """Standard base64 (RFC 4648, section 4); missing padding is tolerated, junk is not."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _secret_bytes(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise KeyInvalid("a webhook secret is 'whsec_' followed by base64")
    try:
        raw = _b64decode(secret[len(SECRET_PREFIX):])
    except (binascii.Error, ValueError):
        raise KeyInvalid("a webhook secret is 'whsec_' followed by base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise KeyInvalid(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, not {len(raw)}")
    return raw


def _load_signing_key(private_key: str) -> Ed25519PrivateKey:
    if not isinstance(private_key, str) or not private_key.startswith(SIGNING_KEY_PREFIX):
        raise KeyInvalid("a webhook signing key is 'whsk_' followed by base64")
    try:
        raw = _b64decode(private_key[len(SIGNING_KEY_PREFIX):])
    except (binascii.Error, ValueError):
        raise KeyInvalid("a webhook signing key is 'whsk_' followed by base64") from None
    if len(raw) not in (32, 64):
        raise KeyInvalid("a webhook signing key holds a 32-byte Ed25519 private key")
    try:
        key = Ed25519PrivateKey.from_private_bytes(raw[:32])
    except ValueError:
        raise KeyInvalid("a webhook signing key holds a 32-byte Ed25519 private key") from None
    if len(raw) == 64 and not hmac.compare_digest(raw[32:], _raw_public(key.public_key())):
        raise KeyInvalid("the public half of a 64-byte webhook signing key does not match its private half")
    return key


def _load_public_key(public_key: str) -> Ed25519PublicKey:
    if not isinstance(public_key, str) or not public_key.startswith(PUBLIC_KEY_PREFIX):
        raise KeyInvalid("a webhook public key is 'whpk_' followed by base64")
    try:
        raw = _b64decode(public_key[len(PUBLIC_KEY_PREFIX):])
    except (binascii.Error, ValueError):
        raise KeyInvalid("a webhook public key is 'whpk_' followed by base64") from None
    if len(raw) != 32:
        raise KeyInvalid("a webhook public key holds a 32-byte Ed25519 public key")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise KeyInvalid("a webhook public key holds a 32-byte Ed25519 public key") from None


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """``{msg_id}.{timestamp}.{body}`` (Standard Webhooks 1.0.0, "Signature scheme")."""
    if not isinstance(msg_id, str) or not _MSG_ID.fullmatch(msg_id):
        raise ValueError("a webhook id is 1 to 256 characters of [A-Za-z0-9_-:+=/], never '.'")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("a webhook timestamp is a non-negative integer of Unix seconds")
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("a webhook body is signed as the exact bytes sent, not as text")
    return f"{msg_id}.{timestamp}.".encode("ascii") + bytes(body)


def _hmac_v1(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, content, hashlib.sha256).digest()


def new_secret(nbytes: int = 32) -> str:
    """A fresh symmetric webhook secret: ``whsec_`` and the base64 of ``nbytes`` random bytes.

    Standard Webhooks 1.0.0, "Signature scheme": the secret is random, at least 24 bytes
    (192 bits) and at most 512 bits, serialised as base64 behind ``whsec_``.
    Raises :class:`ValueError` unless 24 <= ``nbytes`` <= 64.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not MIN_SECRET_BYTES <= nbytes <= MAX_SECRET_BYTES:
        raise ValueError(f"a webhook secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes")
    return SECRET_PREFIX + _b64encode(_secrets.token_bytes(nbytes))


def sign_v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1`` signature: ``v1,`` and the base64 HMAC-SHA256 of ``{msg_id}.{timestamp}.{body}``.

    Standard Webhooks 1.0.0, "Signature scheme" (symmetric): the HMAC key (RFC 2104) is the
    base64-decoded part of the ``whsec_`` secret. Raises :class:`~crypto.errors.KeyInvalid`
    for a malformed secret, :class:`ValueError` for an id holding ``.`` or a bad timestamp.
    """
    key = _secret_bytes(secret)
    return "v1," + _b64encode(_hmac_v1(key, _signed_content(msg_id, timestamp, body)))


def new_signing_keypair() -> tuple[str, str]:
    """A fresh Ed25519 key pair for ``v1a`` signatures, as ``(whsk_..., whpk_...)``.

    Standard Webhooks 1.0.0, "Signature scheme" (asymmetric): a standard Ed25519 key pair
    (RFC 8032, section 5.1.5), base64 behind ``whsk_`` (here the 32-byte private key) and
    ``whpk_`` (the 32-byte public key).
    """
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return SIGNING_KEY_PREFIX + _b64encode(raw), PUBLIC_KEY_PREFIX + _b64encode(_raw_public(key.public_key()))


def public_key_of(private_key: str) -> str:
    """The ``whpk_`` public key of a ``whsk_`` signing key (RFC 8032, section 5.1.5).

    Raises :class:`~crypto.errors.KeyInvalid` for a malformed signing key.
    """
    return PUBLIC_KEY_PREFIX + _b64encode(_raw_public(_load_signing_key(private_key).public_key()))


def sign_v1a(private_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1a`` signature: ``v1a,`` and the base64 Ed25519 signature of ``{msg_id}.{timestamp}.{body}``.

    Standard Webhooks 1.0.0, "Signature scheme" (asymmetric, identifier ``v1a``); Ed25519 as
    in RFC 8032, section 5.1.6. Raises :class:`~crypto.errors.KeyInvalid` for a malformed
    key, :class:`ValueError` for an id holding ``.`` or a bad timestamp.
    """
    key = _load_signing_key(private_key)
    return "v1a," + _b64encode(key.sign(_signed_content(msg_id, timestamp, body)))


def headers(msg_id: str, timestamp: int, body: bytes, *, secret: str, signing_key: str | None = None) -> dict[str, str]:
    """The three delivery headers: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``.

    Standard Webhooks 1.0.0, "Webhook headers": the signature header is a space-delimited
    list; it carries the ``v1`` signature with ``secret`` and, given a ``signing_key``, the
    ``v1a`` signature too.
    """
    signatures = [sign_v1(secret, msg_id, timestamp, body)]
    if signing_key is not None:
        signatures.append(sign_v1a(signing_key, msg_id, timestamp, body))
    return {HEADER_ID: msg_id, HEADER_TIMESTAMP: str(timestamp), HEADER_SIGNATURE: " ".join(signatures)}


def _lowercased(headers: Mapping[str, str]) -> dict[str, str]:
    wanted = (HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)
    found: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower() if isinstance(name, str) else name
        if lower not in wanted:
            continue
        if not isinstance(value, str):
            raise WebhookSignatureInvalid(f"the {lower} header is not text")
        # Two spellings of one header (a Starlette Headers object lists both) with different
        # values is ambiguous: which one did the signer mean?
        if lower in found and found[lower] != value:
            raise WebhookSignatureInvalid(f"the {lower} header appears twice with different values")
        found[lower] = value
    return found


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | None = None,
    public_key: str | None = None,
    tolerance_seconds: int = 300,
    now: int | None = None,
) -> None:
    """Check a delivery's signature; return ``None`` or raise.

    Standard Webhooks 1.0.0, "Verifying signatures": the ``webhook-timestamp`` must lie
    within ``tolerance_seconds`` of ``now`` in either direction (replay protection), and at
    least one entry of the space-delimited ``webhook-signature`` list must verify over
    ``{webhook-id}.{webhook-timestamp}.{body}``: a ``v1`` entry with ``secret`` (compared
    in constant time), a ``v1a`` entry with ``public_key`` (Ed25519, RFC 8032, section
    5.1.7). Entries of other kinds are skipped, so a header signed with several keys during
    a rotation verifies. Header names are matched case-insensitively.

    Raises :class:`~crypto.errors.WebhookSignatureInvalid` on a missing or malformed
    header, a timestamp out of tolerance, or no matching signature;
    :class:`~crypto.errors.KeyInvalid` for a malformed ``secret`` or ``public_key``;
    :class:`ValueError` when neither key is given.
    """
    if secret is None and public_key is None:
        raise ValueError("verify needs a secret (v1), a public key (v1a), or both")
    if isinstance(tolerance_seconds, bool) or not isinstance(tolerance_seconds, int) or tolerance_seconds < 0:
        raise ValueError("tolerance_seconds is a non-negative integer")
    hmac_key = _secret_bytes(secret) if secret is not None else None
    ed_key = _load_public_key(public_key) if public_key is not None else None
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError("a webhook body is verified as the exact bytes received, not as text")

    found = _lowercased(headers)
    missing = [name for name in (HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE) if not found.get(name)]
    if missing:
        raise WebhookSignatureInvalid(f"missing header(s): {', '.join(missing)}")
    msg_id = found[HEADER_ID]
    if not _MSG_ID.fullmatch(msg_id):
        raise WebhookSignatureInvalid("the webhook-id header is malformed")
    if not _TIMESTAMP.fullmatch(found[HEADER_TIMESTAMP]):
        raise WebhookSignatureInvalid("the webhook-timestamp header is not integer Unix seconds")
    timestamp = int(found[HEADER_TIMESTAMP])
    current = int(time.time()) if now is None else now
    if timestamp < current - tolerance_seconds:
        raise WebhookSignatureInvalid("the webhook-timestamp is too old")
    if timestamp > current + tolerance_seconds:
        raise WebhookSignatureInvalid("the webhook-timestamp is in the future")

    entries = found[HEADER_SIGNATURE].split()
    if len(entries) > MAX_SIGNATURES:
        raise WebhookSignatureInvalid(f"the webhook-signature header lists more than {MAX_SIGNATURES} signatures")
    content = _signed_content(msg_id, timestamp, body)
    expected_v1 = _hmac_v1(hmac_key, content) if hmac_key is not None else None
    for entry in entries:
        kind, sep, encoded = entry.partition(",")
        if not sep:
            continue
        try:
            signature = _b64decode(encoded)
        except (binascii.Error, ValueError):
            continue
        if kind == "v1" and expected_v1 is not None:
            if hmac.compare_digest(expected_v1, signature):
                return None
        elif kind == "v1a" and ed_key is not None and len(signature) == 64:
            try:
                ed_key.verify(signature, content)
            except InvalidSignature:
                continue
            return None
    raise WebhookSignatureInvalid("no signature of an accepted kind matches")
