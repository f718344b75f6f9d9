"""JSON Web Signature in compact serialisation (RFC 7515), via python-jose.

:func:`verify` returns the verified payload or raises; it never returns a bool.
The accepted algorithms are a required argument and must come from the key's
record, never from the token: this closes the ``alg: none`` and the
HMAC-keyed-with-a-public-key forgeries (RFC 8725, section 2.1).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate

from jose import jwk as jose_jwk
from jose import jws as jose_jws
from jose.exceptions import JOSEError

from .errors import AlgorithmNotAllowed, KeyInvalid, MalformedJWS, SignatureInvalid
from .keys import OFFICE_ALGORITHMS, PrivateKey, PublicKey, load_public_key

_ASYMMETRIC = frozenset(OFFICE_ALGORITHMS)

# A JOSE header is flat and a manifest four levels deep; anything nested past this is refused
# before a recursive parser (json, pydantic) sees it. RFC 8259, section 9: "An implementation
# may set limits on the maximum depth of nesting."
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(data: bytes) -> int:
    """How deep the arrays and objects of the JSON text ``data`` nest, found without parsing
    (strings are skipped, so brackets inside them do not count)."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def loads_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON text (RFC 8259) nested at most ``max_depth`` deep.

    Raises :class:`ValueError` (as :func:`json.loads` does for any text that is not JSON) when
    the text is deeper: Python's parser recurses once per level and a few thousand brackets
    would exhaust the interpreter's stack.
    """
    raw = data.encode() if isinstance(data, str) else data
    if json_depth(raw) > max_depth:
        raise ValueError(f"JSON nested more than {max_depth} levels deep")
    try:
        return json.loads(raw)
    except RecursionError:  # not reached past the check above; kept as the last line
        raise ValueError("JSON nested too deep") from None


def _b64u_decode(part: str) -> bytes:
    if not part or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in part):
        raise MalformedJWS("a JWS segment is not base64url")
    if len(part) % 4 == 1:
        raise MalformedJWS("a JWS segment has an impossible base64url length")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error:
        raise MalformedJWS("a JWS segment is not base64url") from None


def split_compact(token: str) -> tuple[dict, bytes]:
    """The protected header and payload of a compact JWS, *unverified*.

    Raises :class:`MalformedJWS` unless the value has exactly three base64url
    segments and a JSON object header (RFC 7515, section 7.1).
    """
    if not isinstance(token, str):
        raise MalformedJWS("a JWS must be text")
    token = token.strip()
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedJWS("a compact JWS has three dot-separated segments")
    try:
        header = loads_json(_b64u_decode(parts[0]))
    except (ValueError, UnicodeDecodeError) as exc:
        why = str(exc) if "nested" in str(exc) else "not base64url-encoded JSON"
        raise MalformedJWS(f"the JWS header is {why}") from None
    if not isinstance(header, dict):
        raise MalformedJWS("the JWS header is not a JSON object")
    payload = _b64u_decode(parts[1]) if parts[1] else b""
    if parts[2]:
        _b64u_decode(parts[2])
    # An empty signature is the syntax of an unsecured JWS (``alg: none``): it parses, so
    # that the refusal can name the algorithm; verify() never accepts it.
    return header, payload


def header_of(token: str) -> dict:
    return split_compact(token)[0]


@lru_cache(maxsize=4096)
def _jose_key(pem: str, alg: str):
    load_public_key(pem, alg)  # our own checks first: curve, size, no private keys
    try:
        return jose_jwk.construct(pem, alg)
    except JOSEError as exc:
        raise KeyInvalid(str(exc)) from None


def verify(token: str, key: PublicKey, algorithms: Sequence[str]) -> bytes:
    """Verify a compact JWS with ``key`` and return its payload bytes.

    ``algorithms`` is required: pass ``[key.alg]`` from the key's record. Raises
    :class:`AlgorithmNotAllowed`, :class:`SignatureInvalid`, :class:`MalformedJWS`
    or :class:`KeyInvalid`.
    """
    algorithms = tuple(algorithms)
    if not algorithms or not set(algorithms) <= _ASYMMETRIC:
        raise ValueError("algorithms must be a non-empty subset of " + ", ".join(sorted(_ASYMMETRIC)))
    if key.alg not in algorithms:
        raise AlgorithmNotAllowed(f"the key {key.kid!r} is registered for {key.alg}, not {', '.join(algorithms)}")
    header, _ = split_compact(token)
    alg = header.get("alg")
    if alg != key.alg or alg not in algorithms:
        raise AlgorithmNotAllowed(f"JWS alg {alg!r} is not allowed here (allowed: {', '.join(algorithms)})")
    if header.get("b64") is False or "crit" in header:
        raise MalformedJWS("JWS 'crit' and unencoded payloads (RFC 7797) are not supported")
    try:
        return jose_jws.verify(token.strip(), _jose_key(key.pem, key.alg), algorithms=list(algorithms))
    except JOSEError:
        raise SignatureInvalid(f"the signature does not verify with key {key.kid!r}") from None


def sign(payload: bytes, key: PrivateKey, headers: dict | None = None) -> str:
    """Sign ``payload`` with ``key`` (its own algorithm) and return a compact JWS."""
    if key.alg not in _ASYMMETRIC:
        raise ValueError(f"refusing to sign with {key.alg!r}")
    hdrs = {"kid": key.kid, **(headers or {})}
    try:
        return jose_jws.sign(payload, key.pem, headers=hdrs, algorithm=key.alg)
    except JOSEError as exc:
        raise KeyInvalid(str(exc)) from None
