"""Standard Webhooks signatures: the published vector, round trips and every refusal
(crypto/webhooks.py; Standard Webhooks 1.0.0, "Verifying webhook authenticity")."""

from __future__ import annotations

import base64

import pytest

from crypto import webhooks
from crypto.errors import CryptoError, KeyInvalid, WebhookSignatureInvalid

# The vector of the reference libraries (standard-webhooks/standard-webhooks,
# libraries/*/tests: "test_sign_function"): secret, id, timestamp and body to signature.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NOW = 1_700_000_000
BODY = b'{"type":"dossier.deposited","timestamp":"2023-11-14T22:13:20Z","data":{"dossier_id":"d-1"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


@pytest.fixture(scope="module")
def secret() -> str:
    return webhooks.new_secret()


@pytest.fixture(scope="module")
def keypair() -> tuple[str, str]:
    return webhooks.new_signing_keypair()


def signed(secret: str, *, signing_key: str | None = None, msg_id: str = MSG_ID, timestamp: int = NOW,
           body: bytes = BODY) -> dict[str, str]:
    return webhooks.headers(msg_id, timestamp, body, secret=secret, signing_key=signing_key)


# --- the published vector -------------------------------------------------------------------

def test_published_vector_signs():
    assert webhooks.sign_v1(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_published_vector_verifies():
    hdrs = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP), "webhook-signature": VECTOR_SIGNATURE}
    webhooks.verify(VECTOR_BODY, hdrs, secret=VECTOR_SECRET, now=VECTOR_TIMESTAMP)


def test_published_vector_refuses_its_last_bit_flipped():
    # The reference tests' "invalid signature": the vector with its last base64 digit changed.
    hdrs = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TIMESTAMP),
            "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="}
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(VECTOR_BODY, hdrs, secret=VECTOR_SECRET, now=VECTOR_TIMESTAMP)


# --- secrets --------------------------------------------------------------------------------

@pytest.mark.parametrize("nbytes", [24, 32, 64])
def test_new_secret_shape(nbytes):
    value = webhooks.new_secret(nbytes)
    assert value.startswith("whsec_")
    assert len(base64.b64decode(value[len("whsec_"):], validate=True)) == nbytes


def test_new_secret_is_random():
    assert webhooks.new_secret() != webhooks.new_secret()


@pytest.mark.parametrize("nbytes", [0, 16, 23, 65, 512, True, 32.0])
def test_new_secret_bounds(nbytes):
    with pytest.raises(ValueError):
        webhooks.new_secret(nbytes)


@pytest.mark.parametrize("bad", [
    "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",          # no prefix
    "whsec_",                                     # empty
    "whsec_" + base64.b64encode(b"x" * 23).decode(),  # one byte short
    "whsec_" + base64.b64encode(b"x" * 65).decode(),  # one byte long
    "whsec_not*base64!",
    "whpk_" + base64.b64encode(b"x" * 32).decode(),   # a public key is not a secret
])
def test_malformed_secret_is_a_key_error(bad):
    with pytest.raises(KeyInvalid):
        webhooks.sign_v1(bad, MSG_ID, NOW, BODY)
    with pytest.raises(KeyInvalid):
        webhooks.verify(BODY, {"webhook-id": MSG_ID, "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
                        secret=bad, now=NOW)


def test_unpadded_secret_is_the_same_key():
    assert webhooks.sign_v1(VECTOR_SECRET.rstrip("="), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    padded = webhooks.new_secret(25)  # 25 bytes: base64 ends in "=="
    assert padded.endswith("==")
    assert webhooks.sign_v1(padded, MSG_ID, NOW, BODY) == webhooks.sign_v1(padded.rstrip("="), MSG_ID, NOW, BODY)


# --- v1 round trips and refusals -------------------------------------------------------------

def test_headers_shape(secret):
    hdrs = signed(secret)
    assert set(hdrs) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert hdrs["webhook-id"] == MSG_ID
    assert hdrs["webhook-timestamp"] == str(NOW)
    assert hdrs["webhook-signature"] == webhooks.sign_v1(secret, MSG_ID, NOW, BODY)
    kind, _, sig = hdrs["webhook-signature"].partition(",")
    assert kind == "v1" and len(base64.b64decode(sig, validate=True)) == 32


def test_round_trip(secret):
    assert webhooks.verify(BODY, signed(secret), secret=secret, now=NOW) is None


def test_round_trip_empty_body(secret):
    webhooks.verify(b"", signed(secret, body=b""), secret=secret, now=NOW)


def test_header_names_are_case_insensitive(secret):
    hdrs = {name.upper() if i % 2 else name.title(): value for i, (name, value) in enumerate(signed(secret).items())}
    webhooks.verify(BODY, hdrs, secret=secret, now=NOW)


def test_unrelated_headers_are_ignored(secret):
    hdrs = {**signed(secret), "content-type": "application/json", "X-Other": "1"}
    webhooks.verify(BODY, hdrs, secret=secret, now=NOW)


@pytest.mark.parametrize("tamper", [
    lambda h, b: (h, b + b" "),
    lambda h, b: (h, b.replace(b"d-1", b"d-2")),
    lambda h, b: ({**h, "webhook-id": MSG_ID + "x"}, b),
    lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),
    lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
], ids=["body-appended", "body-changed", "id", "timestamp", "kind"])
def test_tampering_is_refused(secret, tamper):
    hdrs, body = tamper(signed(secret), BODY)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(body, hdrs, secret=secret, now=NOW)


def test_wrong_secret_is_refused(secret):
    with pytest.raises(WebhookSignatureInvalid, match="no signature"):
        webhooks.verify(BODY, signed(secret), secret=webhooks.new_secret(), now=NOW)


def test_dot_moved_between_id_and_timestamp_is_refused(secret):
    # "a.1700000000.body" could be re-read with another split; ids never hold a dot.
    hdrs = signed(secret)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, {**hdrs, "webhook-id": MSG_ID + "." + str(NOW)}, secret=secret, now=NOW)
    with pytest.raises(ValueError):
        webhooks.sign_v1(secret, "msg.1", NOW, BODY)


@pytest.mark.parametrize("offset,ok", [
    (-300, True), (300, True), (0, True),
    (-301, False), (301, False), (-86_400, False), (86_400, False),
])
def test_timestamp_tolerance_both_ways(secret, offset, ok):
    hdrs = signed(secret, timestamp=NOW + offset)
    if ok:
        webhooks.verify(BODY, hdrs, secret=secret, now=NOW)
    else:
        with pytest.raises(WebhookSignatureInvalid, match="too old|future"):
            webhooks.verify(BODY, hdrs, secret=secret, now=NOW)


def test_tolerance_is_configurable(secret):
    hdrs = signed(secret, timestamp=NOW - 60)
    webhooks.verify(BODY, hdrs, secret=secret, now=NOW, tolerance_seconds=60)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, hdrs, secret=secret, now=NOW, tolerance_seconds=59)
    with pytest.raises(ValueError):
        webhooks.verify(BODY, hdrs, secret=secret, now=NOW, tolerance_seconds=-1)


def test_default_now_is_the_clock(secret):
    import time

    fresh = int(time.time())
    webhooks.verify(BODY, signed(secret, timestamp=fresh), secret=secret)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, signed(secret, timestamp=fresh - 3600), secret=secret)


@pytest.mark.parametrize("value", ["", "hello", "1700000000.5", "-1", "+1700000000", " 1700000000", "1_700_000_000",
                                   "1e9", "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660"])
def test_malformed_timestamp_is_refused(secret, value):
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, {**signed(secret), "webhook-timestamp": value}, secret=secret, now=NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_refused(secret, name):
    hdrs = signed(secret)
    del hdrs[name]
    with pytest.raises(WebhookSignatureInvalid, match=name):
        webhooks.verify(BODY, hdrs, secret=secret, now=NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_empty_header_is_refused(secret, name):
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, {**signed(secret), name: ""}, secret=secret, now=NOW)


def test_conflicting_duplicate_headers_are_refused(secret):
    hdrs = signed(secret)
    with pytest.raises(WebhookSignatureInvalid, match="twice"):
        webhooks.verify(BODY, {**hdrs, "Webhook-Id": "msg_other"}, secret=secret, now=NOW)
    webhooks.verify(BODY, {**hdrs, "Webhook-Id": MSG_ID}, secret=secret, now=NOW)


def test_several_signatures_for_key_rotation(secret):
    old = webhooks.new_secret()
    both = " ".join([webhooks.sign_v1(old, MSG_ID, NOW, BODY), webhooks.sign_v1(secret, MSG_ID, NOW, BODY)])
    hdrs = {**signed(secret), "webhook-signature": both}
    webhooks.verify(BODY, hdrs, secret=secret, now=NOW)
    webhooks.verify(BODY, hdrs, secret=old, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, hdrs, secret=webhooks.new_secret(), now=NOW)


def test_unknown_and_malformed_entries_are_skipped(secret):
    good = webhooks.sign_v1(secret, MSG_ID, NOW, BODY)
    noise = ["v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=", "v2," + good[3:], "garbage", "v1,***", "v1,", ","]
    webhooks.verify(BODY, {**signed(secret), "webhook-signature": "  ".join(noise + [good])}, secret=secret, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, {**signed(secret), "webhook-signature": " ".join(noise)}, secret=secret, now=NOW)


def test_too_many_signatures_are_refused(secret):
    good = webhooks.sign_v1(secret, MSG_ID, NOW, BODY)
    crowd = " ".join(["v1,AAAA"] * webhooks.MAX_SIGNATURES + [good])
    with pytest.raises(WebhookSignatureInvalid, match="more than"):
        webhooks.verify(BODY, {**signed(secret), "webhook-signature": crowd}, secret=secret, now=NOW)


def test_verify_needs_a_key(secret):
    with pytest.raises(ValueError):
        webhooks.verify(BODY, signed(secret), now=NOW)


def test_text_bodies_are_refused(secret):
    with pytest.raises(TypeError):
        webhooks.sign_v1(secret, MSG_ID, NOW, BODY.decode())
    with pytest.raises(TypeError):
        webhooks.verify(BODY.decode(), signed(secret), secret=secret, now=NOW)


@pytest.mark.parametrize("msg_id,timestamp", [("", NOW), ("a b", NOW), ("a\nb", NOW), ("x" * 257, NOW),
                                              (MSG_ID, -1), (MSG_ID, True), (MSG_ID, 1.5), (MSG_ID, "1700000000")])
def test_sign_refuses_bad_ids_and_timestamps(secret, msg_id, timestamp):
    with pytest.raises(ValueError):
        webhooks.sign_v1(secret, msg_id, timestamp, BODY)


def test_errors_are_crypto_errors():
    assert issubclass(WebhookSignatureInvalid, CryptoError)
    assert issubclass(KeyInvalid, CryptoError)


# --- v1a (Ed25519) -------------------------------------------------------------------------

def test_keypair_shape(keypair):
    private, public = keypair
    assert private.startswith("whsk_") and public.startswith("whpk_")
    assert len(base64.b64decode(private[5:], validate=True)) == 32
    assert len(base64.b64decode(public[5:], validate=True)) == 32
    assert webhooks.public_key_of(private) == public
    assert webhooks.new_signing_keypair() != keypair


def test_v1a_signature_shape_and_determinism(keypair):
    private, _ = keypair
    sig = webhooks.sign_v1a(private, MSG_ID, NOW, BODY)
    assert sig.startswith("v1a,")
    assert len(base64.b64decode(sig[4:], validate=True)) == 64
    assert webhooks.sign_v1a(private, MSG_ID, NOW, BODY) == sig  # RFC 8032 signatures are deterministic


def test_v1a_round_trip_with_the_public_key(secret, keypair):
    private, public = keypair
    hdrs = signed(secret, signing_key=private)
    kinds = [entry.split(",")[0] for entry in hdrs["webhook-signature"].split(" ")]
    assert kinds == ["v1", "v1a"]
    webhooks.verify(BODY, hdrs, public_key=public, now=NOW)
    webhooks.verify(BODY, hdrs, secret=secret, now=NOW)


def test_v1a_alone_verifies_with_the_public_key_only(secret, keypair):
    private, public = keypair
    only_v1a = {**signed(secret), "webhook-signature": webhooks.sign_v1a(private, MSG_ID, NOW, BODY)}
    webhooks.verify(BODY, only_v1a, public_key=public, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, only_v1a, secret=secret, now=NOW)


def test_v1_alone_does_not_satisfy_a_public_key(secret, keypair):
    _, public = keypair
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, signed(secret), public_key=public, now=NOW)


def test_v1a_tampered_or_other_key_is_refused(secret, keypair):
    private, public = keypair
    hdrs = signed(secret, signing_key=private)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY + b"x", hdrs, public_key=public, now=NOW)
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, {**hdrs, "webhook-id": "msg_other"}, public_key=public, now=NOW)
    _, stranger = webhooks.new_signing_keypair()
    with pytest.raises(WebhookSignatureInvalid):
        webhooks.verify(BODY, hdrs, public_key=stranger, now=NOW)


def test_v1a_rotation(keypair):
    private, public = keypair
    old_private, old_public = webhooks.new_signing_keypair()
    both = " ".join([webhooks.sign_v1a(old_private, MSG_ID, NOW, BODY), webhooks.sign_v1a(private, MSG_ID, NOW, BODY)])
    hdrs = {"webhook-id": MSG_ID, "webhook-timestamp": str(NOW), "webhook-signature": both}
    webhooks.verify(BODY, hdrs, public_key=public, now=NOW)
    webhooks.verify(BODY, hdrs, public_key=old_public, now=NOW)


def test_libsodium_style_64_byte_signing_key(keypair):
    private, public = keypair
    seed = base64.b64decode(private[5:])
    long_form = "whsk_" + base64.b64encode(seed + base64.b64decode(public[5:])).decode()
    assert webhooks.public_key_of(long_form) == public
    assert webhooks.sign_v1a(long_form, MSG_ID, NOW, BODY) == webhooks.sign_v1a(private, MSG_ID, NOW, BODY)
    _, other = webhooks.new_signing_keypair()
    mismatched = "whsk_" + base64.b64encode(seed + base64.b64decode(other[5:])).decode()
    with pytest.raises(KeyInvalid):
        webhooks.public_key_of(mismatched)


@pytest.mark.parametrize("bad", [
    "whsec_" + base64.b64encode(b"k" * 32).decode(),  # a symmetric secret is not a signing key
    "whsk_" + base64.b64encode(b"k" * 31).decode(),
    "whsk_" + base64.b64encode(b"k" * 48).decode(),
    "whsk_%%%%",
    "whsk_",
])
def test_malformed_signing_key(bad):
    with pytest.raises(KeyInvalid):
        webhooks.sign_v1a(bad, MSG_ID, NOW, BODY)
    with pytest.raises(KeyInvalid):
        webhooks.public_key_of(bad)


@pytest.mark.parametrize("bad", [
    "whsk_" + base64.b64encode(b"k" * 32).decode(),   # the private key passed as the public one
    "whpk_" + base64.b64encode(b"k" * 31).decode(),
    "whpk_" + base64.b64encode(b"k" * 33).decode(),
    "whpk_!!!!",
    "MCowBQYDK2VwAyEA" + "A" * 44,                     # SPKI, not the spec's format
])
def test_malformed_public_key(secret, keypair, bad):
    hdrs = signed(secret, signing_key=keypair[0])
    with pytest.raises(KeyInvalid):
        webhooks.verify(BODY, hdrs, public_key=bad, now=NOW)
