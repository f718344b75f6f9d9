"""Deposit receipts: a compact JWS by the exchange over what it received (crypto/receipts.py)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crypto import jws, receipts
from crypto.errors import AlgorithmNotAllowed, MalformedJWS, SignatureInvalid
from crypto.keys import generate_private_key
from tests.support import b64u, forge_hs256

RECEIPT = receipts.Receipt(
    dossier_id="dos_0123456789abcdef0123",
    office="SG",
    manifest_sha256="a" * 64,
    signature_sha256="b" * 64,
    received_at="2026-11-22T01:47:00Z",
    issuer="https://exchange.test",
)


@pytest.fixture(scope="module")
def exchange_key():
    return generate_private_key("ES256")


@pytest.fixture
def published(exchange_key):
    return {exchange_key.kid: exchange_key.public()}


def payload_of(token: str) -> dict:
    p = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))


def test_receipt_roundtrip(exchange_key, published):
    token = receipts.issue(RECEIPT, exchange_key)
    header = jws.header_of(token)
    assert header["typ"] == receipts.RECEIPT_TYPE
    assert header["kid"] == exchange_key.kid
    assert header["alg"] == "ES256"
    assert receipts.verify(token, published) == RECEIPT


def test_the_payload_binds_every_field(exchange_key):
    assert payload_of(receipts.issue(RECEIPT, exchange_key)) == RECEIPT.as_payload()


def test_a_receipt_verifies_among_several_published_keys(exchange_key, published):
    older = generate_private_key("ES256")
    keys = {**published, older.kid: older.public()}
    assert receipts.verify(receipts.issue(RECEIPT, older), keys) == RECEIPT
    assert receipts.verify(receipts.issue(RECEIPT, exchange_key), keys) == RECEIPT


@pytest.mark.parametrize("field", ["dossier_id", "office", "manifest_sha256", "signature_sha256", "received_at"])
def test_a_tampered_receipt_fails(exchange_key, published, field):
    h, p, s = receipts.issue(RECEIPT, exchange_key).split(".")
    body = payload_of(f"{h}.{p}.{s}")
    body[field] = "tampered"
    tampered = f"{h}.{b64u(json.dumps(body, separators=(',', ':'), sort_keys=True).encode())}.{s}"
    with pytest.raises(SignatureInvalid):
        receipts.verify(tampered, published)


def test_a_tampered_signature_fails(exchange_key, published):
    h, p, s = receipts.issue(RECEIPT, exchange_key).split(".")
    s = s[:20] + ("A" if s[20] != "A" else "B") + s[21:]
    with pytest.raises(SignatureInvalid):
        receipts.verify(f"{h}.{p}.{s}", published)


def test_an_unknown_kid_fails(published):
    stranger = generate_private_key("ES256")
    with pytest.raises(SignatureInvalid):
        receipts.verify(receipts.issue(RECEIPT, stranger), published)


def test_a_known_kid_with_another_key_fails(exchange_key, published):
    impostor = generate_private_key("ES256", kid=exchange_key.kid)
    with pytest.raises(SignatureInvalid):
        receipts.verify(receipts.issue(RECEIPT, impostor), published)


@pytest.mark.parametrize("kid", [["k"], {"kid": "x"}], ids=["list", "object"])
def test_a_kid_that_is_not_text_is_an_unknown_kid(exchange_key, published, kid):
    token = jws.sign(json.dumps(RECEIPT.as_payload()).encode(), exchange_key, headers={"kid": kid})
    with pytest.raises(SignatureInvalid):
        receipts.verify(token, published)


def test_a_receipt_signed_hs256_with_the_public_key_is_refused(exchange_key, published):
    token = forge_hs256(RECEIPT.as_payload(), exchange_key.public().pem.encode(), exchange_key.kid)
    with pytest.raises(AlgorithmNotAllowed):
        receipts.verify(token, published)


def test_a_receipt_by_an_es384_key_is_refused():
    es384 = generate_private_key("ES384")
    with pytest.raises(AlgorithmNotAllowed):
        receipts.verify(receipts.issue(RECEIPT, es384), {es384.kid: es384.public()})


def test_a_malformed_receipt_is_refused(published):
    with pytest.raises(MalformedJWS):
        receipts.verify("not-a-receipt", published)


def test_distinct_receipts_sign_distinct_payloads(exchange_key, published):
    other = replace(RECEIPT, manifest_sha256="c" * 64)
    t1, t2 = receipts.issue(RECEIPT, exchange_key), receipts.issue(other, exchange_key)
    assert t1.split(".")[1] != t2.split(".")[1]
    assert receipts.verify(t2, published) == other


def test_format_time_is_utc_with_z():
    t = datetime(2026, 11, 22, 1, 47, 5, tzinfo=UTC)
    assert receipts.format_time(t) == "2026-11-22T01:47:05Z"
    assert receipts.format_time(t.replace(microsecond=120000)) == "2026-11-22T01:47:05.120000Z"
    # another offset is kept as it is, not silently labelled Z
    assert receipts.format_time(t.astimezone(timezone(timedelta(hours=8)))).endswith("+08:00")
