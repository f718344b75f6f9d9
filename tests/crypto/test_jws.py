"""JWS compact serialisation: sign/verify and every refusal (crypto/jws.py, RFC 7515, RFC 8725)."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from crypto import jws
from crypto.errors import AlgorithmNotAllowed, CryptoError, KeyInvalid, MalformedJWS, SignatureInvalid
from crypto.keys import OFFICE_ALGORITHMS, PrivateKey, PublicKey, generate_private_key, load_private_key
from tests.support import b64u, forge_hs256, unsigned

PAYLOAD = json.dumps({"office": "SG", "documents": [{"id": "D1", "sha256": "ab" * 32}]}).encode()


@pytest.fixture(scope="module")
def keys():
    return {alg: generate_private_key(alg) for alg in OFFICE_ALGORITHMS}


@pytest.fixture
def es256(keys) -> PrivateKey:
    return keys["ES256"]


def segments(token: str) -> list[str]:
    return token.split(".")


def with_segment(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


def flip_char(segment: str, index: int) -> str:
    c = segment[index]
    return segment[:index] + ("A" if c != "A" else "B") + segment[index + 1:]


def raw_es256_signature(key: PrivateKey, signing_input: bytes) -> str:
    der = load_private_key(key.pem).sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def signed_with_header(key: PrivateKey, header: dict, payload: bytes = PAYLOAD) -> str:
    """A genuinely ES256-signed token with exactly ``header`` (not rewritten by a library)."""
    signing_input = f"{b64u(json.dumps(header).encode())}.{b64u(payload)}"
    return f"{signing_input}.{raw_es256_signature(key, signing_input.encode())}"


# --- the good path --------------------------------------------------------------------------

@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_sign_verify_roundtrip(keys, alg):
    key = keys[alg]
    token = jws.sign(PAYLOAD, key, headers={"typ": "manifest+jws"})
    header = jws.header_of(token)
    assert header["alg"] == alg
    assert header["kid"] == key.kid
    assert header["typ"] == "manifest+jws"
    assert jws.verify(token, key.public(), algorithms=[alg]) == PAYLOAD
    # surrounding white space from a form field is tolerated
    assert jws.verify(f"  {token}\n", key.public(), algorithms=[alg]) == PAYLOAD


def test_split_compact_returns_the_unverified_header_and_payload(es256):
    token = jws.sign(PAYLOAD, es256)
    header, payload = jws.split_compact(token)
    assert header["alg"] == "ES256"
    assert payload == PAYLOAD


def test_the_handwritten_signer_used_below_produces_valid_es256(es256):
    """Guard for the forgeries below: a token built by hand with a correct header verifies."""
    token = signed_with_header(es256, {"alg": "ES256", "kid": es256.kid})
    assert jws.verify(token, es256.public(), algorithms=["ES256"]) == PAYLOAD


# --- algorithm confusion --------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(es256, alg):
    header = b64u(json.dumps({"alg": alg, "kid": es256.kid}).encode())
    token = f"{header}.{b64u(PAYLOAD)}."
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, es256.public(), algorithms=["ES256"])


def test_alg_none_is_refused_even_with_every_office_algorithm_allowed(keys):
    for alg in OFFICE_ALGORITHMS:
        key = keys[alg]
        with pytest.raises(AlgorithmNotAllowed):
            jws.verify(unsigned({"office": "SG"}, key.kid), key.public(), algorithms=list(OFFICE_ALGORITHMS))


def test_alg_none_with_a_nonempty_signature_is_refused(es256):
    token = with_segment(unsigned({"office": "SG"}, es256.kid), 2, b64u(b"x" * 64))
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, es256.public(), algorithms=["ES256"])


def test_a_missing_alg_is_refused(es256):
    token = signed_with_header(es256, {"kid": es256.kid})
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, es256.public(), algorithms=["ES256"])


def _secrets_of(public: PublicKey) -> dict[str, bytes]:
    key = serialization.load_pem_public_key(public.pem.encode())
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"pem": public.pem.encode(), "pem-stripped": public.pem.strip().encode(), "der": der}


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
@pytest.mark.parametrize("form", ["pem", "pem-stripped", "der"])
def test_hs256_keyed_with_the_public_key_never_verifies(keys, alg, form):
    """RFC 8725 section 2.1: HMAC keyed with the office's public key is a forgery."""
    public = keys[alg].public()
    token = forge_hs256({"office": "SG"}, _secrets_of(public)[form], public.kid)
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, public, algorithms=[public.alg])


@pytest.mark.parametrize("form", ["pem", "der"])
def test_hs256_forgery_refused_even_when_every_office_algorithm_is_allowed(keys, form):
    public = keys["RS256"].public()
    token = forge_hs256({"office": "SG"}, _secrets_of(public)[form], public.kid)
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, public, algorithms=list(OFFICE_ALGORITHMS))


def test_an_es384_token_is_refused_by_an_es256_key_record(keys):
    es384 = keys["ES384"]
    es256_record = PublicKey(es384.kid, "ES256", keys["ES256"].public().pem)
    token = jws.sign(PAYLOAD, es384)
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, es256_record, algorithms=[es256_record.alg])


def test_a_header_alg_other_than_the_key_records_alg_is_refused(es256):
    """The key's record names the one algorithm it verifies (keys.py, RFC 8725 section 3.1).

    A valid ES256 signature presented under ``alg: ES384`` must not verify, even if the
    caller passes a wider algorithm list.
    """
    token = signed_with_header(es256, {"alg": "ES384", "kid": es256.kid})
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, es256.public(), algorithms=["ES256", "ES384"])


def test_a_key_record_outside_the_allowed_algorithms_is_refused(keys):
    token = jws.sign(PAYLOAD, keys["ES384"])
    with pytest.raises(AlgorithmNotAllowed):
        jws.verify(token, keys["ES384"].public(), algorithms=["ES256"])


# --- wrong key, tampering -------------------------------------------------------------------

def _another_public_pem(alg: str) -> str:
    if alg == "RS256":  # 2048 bits: quicker than generate_private_key's 3072
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key({"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}[alg]())
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_a_different_key_of_the_same_algorithm_fails(keys, alg):
    token = jws.sign(PAYLOAD, keys[alg])
    wrong = PublicKey(keys[alg].kid, alg, _another_public_pem(alg))  # same kid, other key
    with pytest.raises(SignatureInvalid):
        jws.verify(token, wrong, algorithms=[alg])


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_a_tampered_payload_fails(keys, alg):
    token = jws.sign(PAYLOAD, keys[alg])
    tampered = with_segment(token, 1, b64u(PAYLOAD.replace(b'"SG"', b'"XX"')))
    with pytest.raises(SignatureInvalid):
        jws.verify(tampered, keys[alg].public(), algorithms=[alg])


@pytest.mark.parametrize("alg", OFFICE_ALGORITHMS)
def test_a_tampered_signature_fails(keys, alg):
    token = jws.sign(PAYLOAD, keys[alg])
    sig = segments(token)[2]
    for bad in (flip_char(sig, len(sig) // 2), flip_char(sig, 0), sig[:-4], sig + "AAAA"):
        with pytest.raises(SignatureInvalid):
            jws.verify(with_segment(token, 2, bad), keys[alg].public(), algorithms=[alg])


def test_an_empty_signature_fails(es256):
    token = with_segment(jws.sign(PAYLOAD, es256), 2, "")
    with pytest.raises(SignatureInvalid):
        jws.verify(token, es256.public(), algorithms=["ES256"])


def test_a_tampered_header_fails(es256):
    token = jws.sign(PAYLOAD, es256)
    header = jws.header_of(token) | {"kid": "someone-else"}
    tampered = with_segment(token, 0, b64u(json.dumps(header).encode()))
    with pytest.raises(SignatureInvalid):
        jws.verify(tampered, es256.public(), algorithms=["ES256"])


# --- malformed compact forms ----------------------------------------------------------------

def _malformed(token: str) -> dict[str, object]:
    h, p, s = segments(token)
    return {
        "two-segments": f"{h}.{p}",
        "four-segments": f"{h}.{p}.{s}.{s}",
        "one-segment": h,
        "empty": "",
        "plus-in-header": f"{h[:-1]}+.{p}.{s}",
        "slash-in-payload": f"{h}.{p[:-1]}/.{s}",
        "padding": f"{h}==.{p}.{s}",
        "space-inside": f"{h}.{p[:5]} {p[5:]}.{s}",
        "non-ascii": f"{h}.{p}é.{s}",
        "header-not-json": f"{b64u(b'not json')}.{p}.{s}",
        "header-not-utf8": f"{b64u(bytes([0xff, 0xfe, 0xfd]))}.{p}.{s}",
        "header-json-list": f"{b64u(json.dumps(['ES256']).encode())}.{p}.{s}",
        "header-json-string": f"{b64u(json.dumps('ES256').encode())}.{p}.{s}",
        "header-json-number": f"{b64u(b'256')}.{p}.{s}",
        "empty-header": f".{p}.{s}",
        "bytes": token.encode(),
        "none": None,
    }


MALFORMED = list(_malformed("h.p.s"))


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_compact_forms_are_refused(es256, case):
    value = _malformed(jws.sign(PAYLOAD, es256))[case]
    with pytest.raises(MalformedJWS):
        jws.verify(value, es256.public(), algorithms=["ES256"])
    with pytest.raises(MalformedJWS):
        jws.header_of(value)


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
def test_a_segment_of_impossible_base64url_length_is_malformed(es256, index):
    """A base64url text of length 4n+1 cannot encode any octets (RFC 4648 section 5)."""
    token = with_segment(jws.sign(PAYLOAD, es256), index, "AAAAA")
    with pytest.raises(MalformedJWS):
        jws.verify(token, es256.public(), algorithms=["ES256"])
    with pytest.raises(MalformedJWS):
        jws.split_compact(token)


def test_crit_header_is_refused(es256):
    token = jws.sign(PAYLOAD, es256, headers={"crit": ["exp"], "exp": 2000000000})
    with pytest.raises(MalformedJWS):
        jws.verify(token, es256.public(), algorithms=["ES256"])


def test_unencoded_payload_b64_false_is_refused(es256):
    """RFC 7797: ``b64: false`` would change what is signed; refused, not misread."""
    header = {"alg": "ES256", "kid": es256.kid, "b64": False, "crit": ["b64"]}
    with pytest.raises(MalformedJWS):
        jws.verify(signed_with_header(es256, header), es256.public(), algorithms=["ES256"])
    header = {"alg": "ES256", "kid": es256.kid, "b64": False}
    with pytest.raises(MalformedJWS):
        jws.verify(signed_with_header(es256, header), es256.public(), algorithms=["ES256"])


def test_every_refusal_is_a_crypto_error():
    for exc in (AlgorithmNotAllowed, SignatureInvalid, MalformedJWS, KeyInvalid):
        assert issubclass(exc, CryptoError)


# --- programming errors and key records -----------------------------------------------------

@pytest.mark.parametrize(
    "algorithms",
    [[], (), ["HS256"], ["ES256", "HS256"], ["none"], ["ES256", "none"], "ES256", ["EdDSA"]],
    ids=["empty-list", "empty-tuple", "hs256", "es256+hs256", "none", "es256+none", "a-string", "eddsa"],
)
def test_verify_with_a_bad_algorithm_list_is_a_programming_error(es256, algorithms):
    token = jws.sign(PAYLOAD, es256)
    with pytest.raises(ValueError):
        jws.verify(token, es256.public(), algorithms=algorithms)


def test_verify_requires_the_algorithm_list():
    with pytest.raises(TypeError):
        jws.verify("a.b.c", PublicKey("k", "ES256", ""))  # type: ignore[call-arg]


def test_sign_refuses_a_symmetric_algorithm(es256):
    with pytest.raises(ValueError):
        jws.sign(PAYLOAD, PrivateKey(es256.kid, "HS256", es256.pem))


def test_a_key_record_whose_pem_does_not_fit_its_alg_is_key_invalid(keys):
    token = jws.sign(PAYLOAD, keys["ES384"])
    mislabelled = PublicKey(keys["ES384"].kid, "ES256", keys["ES384"].public().pem)
    with pytest.raises(KeyInvalid):
        jws.verify(with_segment(token, 0, b64u(json.dumps({"alg": "ES256"}).encode())), mislabelled,
                   algorithms=["ES256"])


def test_a_private_key_in_a_public_key_record_is_key_invalid(es256):
    token = jws.sign(PAYLOAD, es256)
    with pytest.raises(KeyInvalid):
        jws.verify(token, PublicKey(es256.kid, "ES256", es256.pem), algorithms=["ES256"])


def test_b64u_helper_matches_the_standard_library():
    assert b64u(b"\xfb\xff") == base64.urlsafe_b64encode(b"\xfb\xff").decode().rstrip("=")
