"""Key material: parsing, generation and JWK export (RFC 7517, RFC 7518 section 6).

An office key is only ever a *public* key bound to one algorithm. The algorithm
is part of the key's record and is the only algorithm it verifies.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from .errors import KeyInvalid

#: Algorithms an office may sign manifests with (API contract). Never HMAC, never ``none``.
OFFICE_ALGORITHMS = ("ES256", "ES384", "RS256")
EXCHANGE_ALGORITHM = "ES256"

_CURVES = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
_CURVE_NAMES = {"ES256": "P-256", "ES384": "P-384"}
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verification key: its id, its one algorithm, and PEM (SubjectPublicKeyInfo)."""

    kid: str
    alg: str
    pem: str


@dataclass(frozen=True, slots=True)
class PrivateKey:
    kid: str
    alg: str
    pem: str

    def public(self) -> PublicKey:
        return PublicKey(self.kid, self.alg, public_pem_of(self.pem))


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@lru_cache(maxsize=4096)
def load_public_key(pem: str, alg: str):
    """Parse a PEM public key and check that it fits ``alg``; raise :class:`KeyInvalid`."""
    if alg not in OFFICE_ALGORITHMS:
        raise KeyInvalid(f"algorithm {alg!r} is not one of {', '.join(OFFICE_ALGORITHMS)}")
    text = pem.strip()
    if "PRIVATE KEY" in text:
        raise KeyInvalid("a private key was sent; register the public key only")
    try:
        key = serialization.load_pem_public_key(text.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyInvalid(f"not a PEM public key: {exc}") from None
    if alg in _CURVES:
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, _CURVES[alg]):
            raise KeyInvalid(f"{alg} needs an EC key on curve {_CURVE_NAMES[alg]}")
    elif alg == "RS256":
        if not isinstance(key, rsa.RSAPublicKey):
            raise KeyInvalid("RS256 needs an RSA key")
        if key.key_size < MIN_RSA_BITS:
            raise KeyInvalid(f"RSA keys must have at least {MIN_RSA_BITS} bits")
    return key


def normalise_public_pem(pem: str, alg: str) -> str:
    key = load_public_key(pem, alg)
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def generate_private_key(alg: str = "ES256", kid: str | None = None) -> PrivateKey:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg in _CURVES:
        key = ec.generate_private_key(_CURVES[alg]())
    elif alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise KeyInvalid(f"cannot generate keys for {alg!r}")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = public_pem_of(pem)
    return PrivateKey(kid or thumbprint(public_pem, alg), alg, pem)


def load_private_key(pem: str):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyInvalid(f"not a PEM private key: {exc}") from None


def public_pem_of(private_pem: str) -> str:
    key = load_private_key(private_pem)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def alg_of_private_key(private_pem: str) -> str:
    key = load_private_key(private_pem)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        for alg, curve in _CURVES.items():
            if isinstance(key.curve, curve):
                return alg
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise KeyInvalid("unsupported private key type")


def public_jwk(pem: str, alg: str, kid: str | None = None) -> dict:
    """The public JWK (RFC 7517) of a PEM public key, with ``alg``, ``use`` and ``kid``."""
    key = load_public_key(pem, alg)
    if isinstance(key, ec.EllipticCurvePublicKey):
        nums = key.public_numbers()
        size = (key.curve.key_size + 7) // 8
        jwk = {
            "kty": "EC",
            "crv": _CURVE_NAMES[alg],
            "x": _b64u(nums.x.to_bytes(size, "big")),
            "y": _b64u(nums.y.to_bytes(size, "big")),
        }
    else:
        nums = key.public_numbers()
        jwk = {
            "kty": "RSA",
            "n": _b64u(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")),
            "e": _b64u(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")),
        }
    jwk.update({"alg": alg, "use": "sig"})
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def public_pem_from_jwk(jwk: dict) -> str:
    """Inverse of :func:`public_jwk` for the algorithms the exchange uses."""
    def num(v: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)), "big")

    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    if jwk.get("kty") == "EC":
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}.get(str(jwk.get("crv")))
        if curve is None:
            raise KeyInvalid("unsupported curve")
        key = ec.EllipticCurvePublicNumbers(num(jwk["x"]), num(jwk["y"]), curve()).public_key()
    elif jwk.get("kty") == "RSA":
        key = rsa.RSAPublicNumbers(num(jwk["e"]), num(jwk["n"])).public_key()
    else:
        raise KeyInvalid("unsupported JWK key type")
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def thumbprint(pem: str, alg: str) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key: a stable default ``kid``."""
    jwk = public_jwk(pem, alg)
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return _b64u(hashlib.sha256(canonical.encode()).digest())
