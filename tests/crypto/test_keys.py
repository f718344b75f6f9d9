"""Key parsing, JWK export and RFC 7638 thumbprints (crypto/keys.py)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from crypto.errors import KeyInvalid
from crypto.keys import (
    OFFICE_ALGORITHMS,
    alg_of_private_key,
    generate_private_key,
    load_public_key,
    normalise_public_pem,
    public_jwk,
    public_pem_from_jwk,
    thumbprint,
)


def spki_pem(private_key) -> str:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def keys():
    """One generated key per office algorithm (RSA generation is slow: once per module)."""
    return {alg: generate_private_key(alg) for alg in OFFICE_ALGORITHMS}


# --- load_public_key ------------------------------------------------------------------------

@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_a_generated_public_key_loads_for_its_algorithm(keys, alg):
    key = load_public_key(keys[alg].public().pem, alg)
    expected = rsa.RSAPublicKey if alg == "RS256" else ec.EllipticCurvePublicKey
    assert isinstance(key, expected)
    assert alg_of_private_key(keys[alg].pem) == alg


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_a_private_key_pem_is_refused(keys, alg):
    with pytest.raises(KeyInvalid, match="private key"):
        load_public_key(keys[alg].pem, alg)


def test_a_traditional_openssl_private_key_is_refused():
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert "EC PRIVATE KEY" in pem
    with pytest.raises(KeyInvalid):
        load_public_key(pem, "ES256")


@pytest.mark.parametrize(
    ("curve", "alg"),
    [(ec.SECP384R1, "ES256"), (ec.SECP256R1, "ES384"), (ec.SECP521R1, "ES256"), (ec.SECP256K1, "ES256")],
    ids=["P-384-as-ES256", "P-256-as-ES384", "P-521-as-ES256", "secp256k1-as-ES256"],
)
def test_an_ec_key_on_the_wrong_curve_is_refused(curve, alg):
    with pytest.raises(KeyInvalid, match="curve"):
        load_public_key(spki_pem(ec.generate_private_key(curve())), alg)


def test_key_types_do_not_cross(keys):
    with pytest.raises(KeyInvalid):
        load_public_key(keys["RS256"].public().pem, "ES256")
    with pytest.raises(KeyInvalid):
        load_public_key(keys["ES256"].public().pem, "RS256")
    with pytest.raises(KeyInvalid):
        load_public_key(spki_pem(ed25519.Ed25519PrivateKey.generate()), "ES256")


def test_an_rsa_key_under_2048_bits_is_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(KeyInvalid, match="2048"):
        load_public_key(spki_pem(small), "RS256")


def test_an_rsa_key_of_exactly_2048_bits_is_accepted():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert load_public_key(spki_pem(key), "RS256").key_size == 2048


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(b"\x30\x03\x02\x01\x01").decode()
        + "\n-----END PUBLIC KEY-----\n",
    ],
    ids=["empty", "text", "bad-base64-body", "der-not-spki"],
)
def test_garbage_is_refused(pem):
    with pytest.raises(KeyInvalid):
        load_public_key(pem, "ES256")


@pytest.mark.parametrize("alg", ["HS256", "none", "EdDSA", "PS256", "es256"])
def test_an_algorithm_outside_the_office_list_is_refused(keys, alg):
    with pytest.raises(KeyInvalid, match="not one of"):
        load_public_key(keys["ES256"].public().pem, alg)


def test_normalise_public_pem_is_canonical(keys):
    pem = keys["ES256"].public().pem
    messy = "\n\n  " + pem.replace("\n", "\r\n") + "  \n"
    assert normalise_public_pem(messy, "ES256") == pem


# --- JWK ------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_public_jwk_roundtrips_to_the_same_pem(keys, alg):
    pem = keys[alg].public().pem
    jwk = public_jwk(pem, alg, kid="office-key-1")
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert jwk["kid"] == "office-key-1"
    assert public_pem_from_jwk(jwk) == pem
    assert "d" not in jwk and "p" not in jwk  # never any private member


@pytest.mark.parametrize(("alg", "crv", "size"), [("ES256", "P-256", 32), ("ES384", "P-384", 48)])
def test_ec_jwk_members(keys, alg, crv, size):
    jwk = public_jwk(keys[alg].public().pem, alg)
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == crv
    assert "kid" not in jwk
    nums = load_public_key(keys[alg].public().pem, alg).public_numbers()
    assert b64u_decode(jwk["x"]) == nums.x.to_bytes(size, "big")
    assert b64u_decode(jwk["y"]) == nums.y.to_bytes(size, "big")
    assert "=" not in jwk["x"] + jwk["y"]


def test_ec_coordinates_keep_their_leading_zero_bytes():
    """RFC 7518 section 6.2.1.2: x is the full curve size, even when it starts with 0x00."""
    for _ in range(20000):
        key = ec.generate_private_key(ec.SECP256R1())
        if key.public_key().public_numbers().x < 1 << 248:
            break
    else:  # pragma: no cover - 1 in 256 per try
        pytest.fail("no key with a short x coordinate found")
    pem = spki_pem(key)
    jwk = public_jwk(pem, "ES256")
    assert len(b64u_decode(jwk["x"])) == 32
    assert b64u_decode(jwk["x"])[0] == 0
    assert public_pem_from_jwk(jwk) == pem


def test_rsa_jwk_members(keys):
    pem = keys["RS256"].public().pem
    jwk = public_jwk(pem, "RS256")
    nums = load_public_key(pem, "RS256").public_numbers()
    assert jwk["kty"] == "RSA"
    assert jwk["e"] == "AQAB"
    assert int.from_bytes(b64u_decode(jwk["n"]), "big") == nums.n
    assert b64u_decode(jwk["n"])[0] != 0  # minimal big-endian, no leading zero octet


@pytest.mark.parametrize(
    "jwk",
    [{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
     {"kty": "oct", "k": "c2VjcmV0"}, {}],
    ids=["okp", "p521", "oct", "empty"],
)
def test_public_pem_from_jwk_refuses_other_key_types(jwk):
    with pytest.raises(KeyInvalid):
        public_pem_from_jwk(jwk)


# --- RFC 7638 thumbprints -------------------------------------------------------------------

def independent_thumbprint(jwk: dict) -> str:
    """RFC 7638 section 3: the required members only, lexicographic order, no white space."""
    if jwk["kty"] == "EC":
        text = '{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}'.format(jwk["crv"], jwk["x"], jwk["y"])
    else:
        text = '{{"e":"{}","kty":"RSA","n":"{}"}}'.format(jwk["e"], jwk["n"])
    return b64u(hashlib.sha256(text.encode()).digest())


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_thumbprint_follows_rfc_7638(keys, alg):
    pem = keys[alg].public().pem
    tp = thumbprint(pem, alg)
    assert tp == independent_thumbprint(public_jwk(pem, alg, kid="ignored"))
    assert len(tp) == 43 and "=" not in tp
    # stable: across calls, and across PEM formatting of the same key
    assert thumbprint(pem, alg) == tp
    assert thumbprint(pem.replace("\n", "\r\n") + "\n\n", alg) == tp


def test_thumbprint_matches_the_rfc_7638_example():
    """The RSA key and thumbprint of RFC 7638, section 3.1."""
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKR"
             "XjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaS"
             "qzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINH"
             "aQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
    }
    assert thumbprint(public_pem_from_jwk(jwk), "RS256") == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_thumbprints_differ_between_keys_and_are_the_default_kid():
    a, b = generate_private_key("ES256"), generate_private_key("ES256")
    assert a.kid == thumbprint(a.public().pem, "ES256")
    assert a.kid != b.kid
    assert generate_private_key("ES256", kid="chosen").kid == "chosen"


def test_canonical_json_of_the_thumbprint_input_has_no_extra_members(keys):
    """Only the required members are hashed: alg/use/kid must not change the thumbprint."""
    pem = keys["ES384"].public().pem
    jwk = public_jwk(pem, "ES384", kid="x")
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True)
    assert thumbprint(pem, "ES384") == b64u(hashlib.sha256(canonical.encode()).digest())


def test_generate_refuses_hmac():
    with pytest.raises(KeyInvalid):
        generate_private_key("HS256")
