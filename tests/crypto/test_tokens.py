"""The exchange's access tokens (crypto/tokens.py, RFC 7519, RFC 8725) and client secrets
(crypto/secrets.py, RFC 9106)."""

from __future__ import annotations

import base64
import json
import time

import pytest

from crypto import jws, tokens
from crypto.errors import TokenExpired, TokenInvalid
from crypto.keys import PublicKey, generate_private_key
from crypto.secrets import hash_password, new_id, new_secret, password_matches
from tests.support import b64u, forge_hs256, unsigned

ISSUER = "https://exchange.test"
AUDIENCE = "https://exchange.test/v1"
CLAIMS = {"sub": "cl_0123456789", "office": "SG", "roles": ["depositor"]}


@pytest.fixture(scope="module")
def exchange_key():
    return generate_private_key("ES256")


@pytest.fixture
def key_map(exchange_key):
    return {exchange_key.kid: exchange_key.public()}


def issue(key, ttl_seconds: int = 300, claims=CLAIMS, **kw) -> str:
    return tokens.issue(claims, key, issuer=kw.get("issuer", ISSUER), audience=kw.get("audience", AUDIENCE),
                        ttl_seconds=ttl_seconds)


def verify(token, keys, **kw) -> dict:
    return tokens.verify(token, keys, issuer=kw.get("issuer", ISSUER), audience=kw.get("audience", AUDIENCE))


def assert_invalid_not_expired(excinfo) -> None:
    assert type(excinfo.value) is TokenInvalid, type(excinfo.value)


def test_issue_verify_roundtrip(exchange_key, key_map):
    before = int(time.time())
    token = issue(exchange_key, ttl_seconds=600)
    header = jws.header_of(token)
    assert header == {"alg": "ES256", "kid": exchange_key.kid, "typ": "at+jwt"}
    claims = verify(token, key_map)
    assert {k: claims[k] for k in CLAIMS} == CLAIMS
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] - claims["iat"] == 600
    assert claims["nbf"] == claims["iat"]
    assert len(claims["jti"]) == 32


def test_each_token_has_its_own_jti(exchange_key, key_map):
    assert verify(issue(exchange_key), key_map)["jti"] != verify(issue(exchange_key), key_map)["jti"]


def test_issuer_and_audience_cannot_be_overridden_by_claims(exchange_key, key_map):
    token = issue(exchange_key, claims={**CLAIMS, "iss": "https://evil.test", "aud": "evil"})
    claims = verify(token, key_map)
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE


def test_an_expired_token_raises_token_expired(exchange_key, key_map):
    with pytest.raises(TokenExpired):
        verify(issue(exchange_key, ttl_seconds=-120), key_map)


def test_the_leeway_covers_small_clock_skew(exchange_key, key_map):
    assert verify(issue(exchange_key, ttl_seconds=-10), key_map)["sub"] == CLAIMS["sub"]


def test_token_expired_is_a_token_invalid():
    assert issubclass(TokenExpired, TokenInvalid)


def test_a_wrong_audience_is_invalid(exchange_key, key_map):
    with pytest.raises(TokenInvalid) as excinfo:
        verify(issue(exchange_key, audience="https://other.test/v1"), key_map)
    assert_invalid_not_expired(excinfo)


def test_a_wrong_issuer_is_invalid(exchange_key, key_map):
    with pytest.raises(TokenInvalid) as excinfo:
        verify(issue(exchange_key, issuer="https://other.test"), key_map)
    assert_invalid_not_expired(excinfo)


def test_a_token_without_sub_is_invalid(exchange_key, key_map):
    with pytest.raises(TokenInvalid):
        verify(issue(exchange_key, claims={"office": "SG"}), key_map)


def test_a_key_not_in_the_key_map_is_invalid(exchange_key, key_map):
    stranger = generate_private_key("ES256")
    with pytest.raises(TokenInvalid) as excinfo:
        verify(issue(stranger), key_map)
    assert_invalid_not_expired(excinfo)


def test_another_key_under_a_known_kid_is_invalid(exchange_key, key_map):
    impostor = generate_private_key("ES256", kid=exchange_key.kid)
    with pytest.raises(TokenInvalid):
        verify(issue(impostor), key_map)


def test_an_empty_key_map_refuses_everything(exchange_key):
    with pytest.raises(TokenInvalid):
        verify(issue(exchange_key), {})


def _valid_body() -> dict:
    now = int(time.time())
    return {**CLAIMS, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300}


@pytest.mark.parametrize("form", ["pem", "pem-stripped"])
def test_hs256_forged_with_the_exchange_public_key_is_invalid(exchange_key, key_map, form):
    pem = exchange_key.public().pem
    secret = (pem if form == "pem" else pem.strip()).encode()
    with pytest.raises(TokenInvalid):
        verify(forge_hs256(_valid_body(), secret, exchange_key.kid), key_map)


def test_alg_none_is_invalid(exchange_key, key_map):
    with pytest.raises(TokenInvalid):
        verify(unsigned(_valid_body(), exchange_key.kid), key_map)


def test_an_es384_key_in_the_map_is_not_accepted(key_map):
    """Exchange tokens are ES256 only, whatever the key map holds."""
    es384 = generate_private_key("ES384")
    keys = {**key_map, es384.kid: es384.public()}
    token = issue(es384)
    assert jws.header_of(token)["alg"] == "ES384"
    with pytest.raises(TokenInvalid):
        verify(token, keys)


def test_an_es256_token_under_a_kid_recorded_as_es384_is_invalid(exchange_key):
    mislabelled = {exchange_key.kid: PublicKey(exchange_key.kid, "ES384", exchange_key.public().pem)}
    with pytest.raises(TokenInvalid):
        verify(issue(exchange_key), mislabelled)


@pytest.mark.parametrize("kid", [["k"], {"k": 1}, 7, None])
def test_a_kid_that_is_not_text_is_invalid(exchange_key, key_map, kid):
    token = jws.sign(json.dumps(_valid_body()).encode(), exchange_key, headers={"kid": kid})
    with pytest.raises(TokenInvalid):
        verify(token, key_map)


def test_a_signed_payload_that_is_not_a_claims_object_is_invalid(exchange_key, key_map):
    for payload in (b"not json", b"[1, 2]"):
        with pytest.raises(TokenInvalid):
            verify(jws.sign(payload, exchange_key), key_map)


@pytest.mark.parametrize("value", ["", "garbage", "a.b", "a.b.c.d", "Bearer x.y.z", None, b"a.b.c"])
def test_malformed_tokens_are_invalid(key_map, value):
    with pytest.raises(TokenInvalid):
        verify(value, key_map)


@pytest.mark.parametrize("index", [1, 2], ids=["payload", "signature"])
def test_a_segment_of_impossible_base64url_length_is_invalid(exchange_key, key_map, index):
    parts = issue(exchange_key).split(".")
    parts[index] = "AAAAA"
    with pytest.raises(TokenInvalid):
        verify(".".join(parts), key_map)


def test_a_tampered_claim_is_invalid(exchange_key, key_map):
    h, p, s = issue(exchange_key).split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body["roles"] = ["admin"]
    with pytest.raises(TokenInvalid):
        verify(f"{h}.{b64u(json.dumps(body).encode())}.{s}", key_map)


def test_a_token_not_yet_valid_is_invalid(exchange_key, key_map):
    body = _valid_body() | {"nbf": int(time.time()) + 600}
    token = jws.sign(json.dumps(body).encode(), exchange_key, headers={"typ": "at+jwt"})
    with pytest.raises(TokenInvalid):
        verify(token, key_map)


# --- people's passwords (crypto/secrets.py) --------------------------------------------------

def test_a_password_matches_its_hash():
    secret = new_secret()
    stored = hash_password(secret)
    assert stored.startswith("$argon2id$")
    assert secret not in stored
    assert password_matches(stored, secret) is True


def test_a_wrong_secret_does_not_match():
    stored = hash_password(new_secret())
    assert password_matches(stored, new_secret()) is False
    assert password_matches(stored, "") is False


def test_no_stored_hash_never_matches():
    assert password_matches(None, "unknown-person") is False  # not even the dummy's own secret
    assert password_matches(None, new_secret()) is False


def test_an_empty_stored_hash_never_matches():
    """An empty hash (a blanked column) must not fall back to the dummy hash and then match
    the dummy's publicly known secret."""
    assert password_matches("", new_secret()) is False
    assert password_matches("", "unknown-person") is False


def test_a_corrupt_stored_hash_does_not_match():
    assert password_matches("not-an-argon2-hash", "anything") is False


def test_hashes_are_salted():
    secret = new_secret()
    a, b = hash_password(secret), hash_password(secret)
    assert a != b
    assert password_matches(a, secret) and password_matches(b, secret)


def test_new_secret_and_id_shapes():
    s1, s2 = new_secret(), new_secret()
    assert s1.startswith("cs_") and s1 != s2 and len(s1) >= 40
    assert new_secret("x_").startswith("x_")
    ident = new_id("cl_")
    assert ident.startswith("cl_") and len(ident) == 3 + 20
