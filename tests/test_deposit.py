"""Deposits: the success path end to end, and every refusal leaving nothing behind."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from crypto import receipts
from crypto.keys import PublicKey, public_pem_from_jwk
from tests.support import deposit, forge_hs256, manifest, new_key, sign, unsigned

FILES = {"sr-1": b"%PDF-1.7 search report " * 100, "claims-1": b"%PDF-1.7 claims examined"}
NOW = datetime.now(UTC)


def problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status and body["title"] and body["type"].endswith(code)
    return body


def assert_nothing_kept(stack) -> None:
    assert stack.count("dossier") == 0
    assert stack.count("document") == 0
    assert stack.count("blob") == 0
    assert stack.count("receipt") == 0
    assert stack.count("outbox_event") == 0
    assert stack.stored_objects() == []


def refusals(stack) -> list[dict]:
    admin = stack.admin()
    r = httpx.get(f"{stack.url}/v1/audit", params={"action": "dossier.deposit", "outcome": "refused"}, headers=admin)
    assert r.status_code == 200
    return r.json()["items"]


# --- success ---------------------------------------------------------------------------------

def test_deposit_returns_a_receipt_and_the_bytes_come_back_exact(stack):
    sg = stack.office("SG")
    m = manifest("SG", FILES)
    token = sign(m, sg.key)
    r = deposit(sg, token, FILES)
    assert r.status_code == 201, r.text
    body = r.json()
    dossier_id = body["dossier_id"]
    assert r.headers["location"] == f"/v1/dossiers/{dossier_id}"

    jwks = httpx.get(f"{stack.url}/.well-known/jwks.json").json()
    keys = {k["kid"]: PublicKey(k["kid"], k["alg"], public_pem_from_jwk(k)) for k in jwks["keys"]}
    receipt = receipts.verify(body["receipt"], keys)
    payload = json.dumps(m, separators=(",", ":")).encode()
    assert receipt.dossier_id == dossier_id
    assert receipt.manifest_sha256 == hashlib.sha256(payload).hexdigest()
    assert receipt.signature_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert receipt.office == "SG"

    with sg.client() as http:
        d = http.get(f"/v1/dossiers/{dossier_id}").json()
        assert [x["id"] for x in d["documents"]] == ["sr-1", "claims-1"]
        assert d["receipt"] == body["receipt"] and d["kid"] == sg.key.kid
        for doc_id, data in FILES.items():
            got = http.get(f"/v1/dossiers/{dossier_id}/documents/{doc_id}")
            assert got.status_code == 200
            assert got.content == data
            assert got.headers["content-length"] == str(len(data))
            assert got.headers["content-type"] == "application/pdf"
            digest = __import__("base64").b64encode(hashlib.sha256(data).digest()).decode()
            assert got.headers["repr-digest"] == f"sha-256=:{digest}:"
            assert got.headers["content-disposition"].startswith("inline; filename=")
        sig = http.get(f"/v1/dossiers/{dossier_id}/signature")
        assert sig.headers["content-type"] == "application/jose" and sig.text == token
    assert stack.count("outbox_event") == 1
    assert len(stack.stored_objects()) == 2


def test_same_manifest_again_answers_200_with_the_first_receipt(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", FILES), sg.key)
    first = deposit(sg, token, FILES)
    again = deposit(sg, token, FILES)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["dossier_id"] == first.json()["dossier_id"]
    assert again.json()["receipt"] == first.json()["receipt"]
    assert stack.count("dossier") == 1


def test_identical_documents_in_two_dossiers_are_stored_once(stack):
    sg = stack.office("SG")
    r1 = deposit(sg, sign(manifest("SG", FILES, number="10202301111A"), sg.key), FILES)
    r2 = deposit(sg, sign(manifest("SG", FILES, number="10202302222B"), sg.key), FILES)
    assert r1.status_code == r2.status_code == 201
    assert stack.count("dossier") == 2 and stack.count("document") == 4
    assert stack.count("blob") == 2 and len(stack.stored_objects()) == 2


def test_stored_documents_are_under_retention(pg_stack):
    stack = pg_stack
    sg = stack.office("SG")
    r = deposit(sg, sign(manifest("SG", FILES), sg.key), FILES)
    assert r.status_code == 201
    from dossiers.storage import ObjectRetained, blob_key

    key = blob_key(hashlib.sha256(FILES["sr-1"]).hexdigest())
    info = stack.store.stat(key)
    assert info.retained_until is not None and info.retained_until > NOW + timedelta(days=3000)
    with pytest.raises(ObjectRetained):
        stack.store.delete(key)


def test_examiner_only_client_cannot_deposit(stack):
    sg = stack.office("SG", roles=("examiner",))
    r = deposit(sg, sign(manifest("SG", FILES), sg.key), FILES)
    problem(r, 403, "forbidden")
    assert_nothing_kept(stack)


# --- signatures and keys ---------------------------------------------------------------------

def test_signature_that_does_not_verify(stack):
    sg = stack.office("SG")
    other = new_key()
    token = sign(manifest("SG", FILES), other.__class__(sg.key.kid, other.alg, other.pem))
    problem(deposit(sg, token, FILES), 422, "signature-invalid")
    assert_nothing_kept(stack)
    [entry] = refusals(stack)
    assert entry["reason"] == "signature-invalid" and entry["office"] == "SG"


def test_tampered_manifest_payload(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", FILES), sg.key)
    h, p, s = token.split(".")
    m = json.loads(__import__("base64").urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    m["application"]["title"] = "Something else"
    from tests.support import b64u
    forged = f"{h}.{b64u(json.dumps(m).encode())}.{s}"
    problem(deposit(sg, forged, FILES), 422, "signature-invalid")
    assert_nothing_kept(stack)


def test_alg_none_is_refused(stack):
    sg = stack.office("SG")
    problem(deposit(sg, unsigned(manifest("SG", FILES), sg.key.kid), FILES), 400, "alg-not-allowed")
    assert_nothing_kept(stack)


@pytest.mark.parametrize("encoding", ["pem", "der"])
def test_hs256_keyed_with_the_office_public_key_is_refused(stack, encoding):
    sg = stack.office("SG")
    public = serialization.load_pem_public_key(sg.key.public().pem.encode())
    secret = (sg.key.public().pem.encode() if encoding == "pem" else
              public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    problem(deposit(sg, forge_hs256(manifest("SG", FILES), secret, sg.key.kid), FILES), 400, "alg-not-allowed")
    assert_nothing_kept(stack)


def test_alg_other_than_the_keys_registered_alg(stack):
    sg = stack.office("SG")
    es384 = new_key("ES384")
    token = sign(manifest("SG", FILES), es384.__class__(sg.key.kid, "ES384", es384.pem))
    body = problem(deposit(sg, token, FILES), 400, "alg-not-allowed")
    assert "ES256" in body["detail"]


def test_unknown_kid(stack):
    sg = stack.office("SG")
    stranger = new_key()
    problem(deposit(sg, sign(manifest("SG", FILES), stranger), FILES), 422, "key-unknown")
    assert_nothing_kept(stack)


def test_key_revoked_before_signing(stack):
    sg = stack.office("SG")
    with sg.client() as http:
        r = http.post(f"/v1/offices/SG/keys/{sg.key.kid}/revoke",
                      json={"revoked_at": (NOW - timedelta(days=1)).isoformat(), "reason": "compromised"})
        assert r.status_code == 200 and r.json()["revoked_at"]
    problem(deposit(sg, sign(manifest("SG", FILES), sg.key), FILES), 422, "key-revoked")
    assert_nothing_kept(stack)


def test_key_revoked_after_signing_but_before_receipt(stack):
    sg = stack.office("SG")
    signed_at = NOW - timedelta(hours=2)
    with sg.client() as http:
        assert http.post(f"/v1/offices/SG/keys/{sg.key.kid}/revoke",
                         json={"revoked_at": (NOW - timedelta(hours=1)).isoformat()}).status_code == 200
    r = deposit(sg, sign(manifest("SG", FILES, signed_at=signed_at), sg.key), FILES)
    assert "receipt" in problem(r, 422, "key-revoked")["detail"]
    assert_nothing_kept(stack)


def test_expired_key(stack):
    sg = stack.office("SG", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    problem(deposit(sg, sign(manifest("SG", FILES, signed_at=NOW - timedelta(days=2)), sg.key), FILES),
            422, "key-not-valid")
    assert_nothing_kept(stack)


def test_not_yet_valid_key(stack):
    sg = stack.office("SG", not_before=NOW + timedelta(days=1))
    problem(deposit(sg, sign(manifest("SG", FILES), sg.key), FILES), 422, "key-not-valid")
    assert_nothing_kept(stack)


def test_signed_in_the_future(stack):
    sg = stack.office("SG")
    r = deposit(sg, sign(manifest("SG", FILES, signed_at=NOW + timedelta(hours=1)), sg.key), FILES)
    problem(r, 422, "signed-at-in-future")


def test_another_offices_manifest(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    my = stack.office("MY", admin=admin)
    # MY's depositor sends a manifest SG signed with SG's own key.
    problem(deposit(my, sign(manifest("SG", FILES), sg.key), FILES), 403, "office-mismatch")
    # ...or one signed with MY's key but claiming to be SG's.
    problem(deposit(my, sign(manifest("SG", FILES), my.key), FILES), 403, "office-mismatch")
    assert_nothing_kept(stack)


# --- the manifest's shape ----------------------------------------------------------------------

@pytest.mark.parametrize("token", ["not a jws", "a.b", "a.b.c.d", "eyJhbGciOiJFUzI1NiJ9.e30.%%%", ""])
def test_malformed_jws(stack, token):
    sg = stack.office("SG")
    r = deposit(sg, token, FILES)
    assert r.status_code in (400,), r.text
    assert r.json()["code"] in ("manifest-malformed", "manifest-missing")
    assert_nothing_kept(stack)


def test_payload_that_is_not_json(stack):
    sg = stack.office("SG")
    problem(deposit(sg, sign(b"{not json", sg.key), FILES), 422, "manifest-invalid")


def test_unknown_document_type(stack):
    sg = stack.office("SG")
    m = manifest("SG", FILES)
    m["documents"][0]["type"] = "MEMO"
    body = problem(deposit(sg, sign(m, sg.key), FILES), 422, "manifest-invalid")
    assert any(e["pointer"] == "/documents/0/type" for e in body["errors"])
    assert_nothing_kept(stack)


@pytest.mark.parametrize("mutate, pointer", [
    (lambda m: m.pop("signed_at"), "/signed_at"),
    (lambda m: m["documents"][0].update(sha256="XYZ"), "/documents/0/sha256"),
    (lambda m: m["documents"][0].update(media_type="text/html"), "/documents/0/media_type"),
    (lambda m: m["citations"][0].update(category="Q"), "/citations/0/category"),
    (lambda m: m.update(surprise=1), "/surprise"),
    (lambda m: m["documents"].append(dict(m["documents"][0])), "/"),
    (lambda m: m.update(documents=[]), "/documents"),
])
def test_manifest_shape_errors_name_the_field(stack, mutate, pointer):
    sg = stack.office("SG")
    m = manifest("SG", FILES)
    mutate(m)
    body = problem(deposit(sg, sign(m, sg.key), FILES), 422, "manifest-invalid")
    assert any(e["pointer"] == pointer or (pointer == "/" and "unique" in e["detail"]) for e in body["errors"]), body


# --- the documents -----------------------------------------------------------------------------

def test_missing_document_part(stack):
    sg = stack.office("SG")
    body = problem(deposit(sg, sign(manifest("SG", FILES), sg.key), {"sr-1": FILES["sr-1"]}), 422, "document-missing")
    assert body["documents"] == ["claims-1"]
    assert_nothing_kept(stack)


def test_extra_document_part(stack):
    sg = stack.office("SG")
    r = deposit(sg, sign(manifest("SG", FILES), sg.key), {**FILES, "zz-extra": b"surprise"})
    problem(r, 422, "document-unexpected")
    assert_nothing_kept(stack)


def test_altered_document(stack):
    sg = stack.office("SG")
    altered = {**FILES, "claims-1": FILES["claims-1"][:-1] + b"X"}
    problem(deposit(sg, sign(manifest("SG", FILES), sg.key), altered), 422, "document-digest-mismatch")
    assert_nothing_kept(stack)


def test_document_longer_or_shorter_than_declared(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", FILES), sg.key)
    problem(deposit(sg, token, {**FILES, "sr-1": FILES["sr-1"] + b"more"}), 422, "document-size-mismatch")
    problem(deposit(sg, token, {**FILES, "sr-1": FILES["sr-1"][:10]}), 422, "document-size-mismatch")
    assert_nothing_kept(stack)


def test_altered_document_after_another_was_stored_removes_the_stored_one(stack):
    sg = stack.office("SG")
    big = {"sr-1": b"A" * (3 * 1024 * 1024), "claims-1": b"B" * 1000}
    bad = {"sr-1": big["sr-1"], "claims-1": b"C" * 1000}
    problem(deposit(sg, sign(manifest("SG", big), sg.key), bad), 422, "document-digest-mismatch")
    assert_nothing_kept(stack)


def test_oversize_body_is_refused_before_parsing(stack):
    sg = stack.office("SG")
    limit = stack.settings.max_deposit_bytes
    # Declare more than the limit and send only the start: the answer must come before the body.
    with socket.create_connection(("127.0.0.1", stack.server.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/dossiers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sg.token}\r\n"
                      f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {limit + 1}\r\n\r\n"
                      "--x\r\n").encode())
        raw = b""
        while b"\r\n\r\n" not in raw or not raw.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/problem+json" in head
    assert json.loads(body)["code"] == "body-too-large"
    assert_nothing_kept(stack)


def test_manifest_must_come_first(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", FILES), sg.key)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"sr-1\"; filename=\"a.pdf\"\r\n\r\n").encode() \
        + FILES["sr-1"] \
        + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n".encode() \
        + f"{token}\r\n--{boundary}--\r\n".encode()
    r = httpx.post(f"{stack.url}/v1/dossiers", content=body,
                   headers={**sg.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    problem(r, 400, "manifest-missing")
    assert_nothing_kept(stack)


@pytest.mark.parametrize("ctype, content", [
    ("application/json", b"{}"),
    ("multipart/form-data", b"--x\r\n"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\nabc"),
])
def test_malformed_multipart(stack, ctype, content):
    sg = stack.office("SG")
    r = httpx.post(f"{stack.url}/v1/dossiers", content=content, headers={**sg.headers, "Content-Type": ctype})
    problem(r, 400, "multipart-malformed")
    assert_nothing_kept(stack)


# --- tokens --------------------------------------------------------------------------------------

def test_missing_wrong_and_foreign_tokens(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", FILES), sg.key)
    url = f"{stack.url}/v1/dossiers"
    r = httpx.post(url, data={"manifest": token})
    problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(httpx.post(url, data={"manifest": token}, headers={"Authorization": "Bearer nonsense"}), 401,
            "unauthenticated")
    problem(httpx.post(url, data={"manifest": token}, headers={"Authorization": "Basic abc"}), 401, "unauthenticated")

    from crypto import tokens
    from dossiers import signing_keys

    with stack.session_factory() as s:
        key = signing_keys.current(s)
    claims = {"sub": sg.client_id, "office": "SG", "roles": ["depositor"]}
    for kwargs in (dict(issuer="http://other.exchange", audience=stack.settings.token_audience, ttl_seconds=300),
                   dict(issuer=stack.settings.issuer, audience="someone-else", ttl_seconds=300),
                   dict(issuer=stack.settings.issuer, audience=stack.settings.token_audience, ttl_seconds=-300)):
        t = tokens.issue(claims, key, **kwargs)
        problem(httpx.post(url, data={"manifest": token}, headers={"Authorization": f"Bearer {t}"}), 401,
                "unauthenticated")
    stranger = new_key()
    t = tokens.issue(claims, stranger, issuer=stack.settings.issuer, audience=stack.settings.token_audience,
                     ttl_seconds=300)
    problem(httpx.post(url, data={"manifest": token}, headers={"Authorization": f"Bearer {t}"}), 401, "unauthenticated")
    assert_nothing_kept(stack)


def test_token_endpoint(stack):
    sg = stack.office("SG")
    url = f"{stack.url}/oauth/token"
    r = httpx.post(url, data={"grant_type": "client_credentials", "client_id": sg.client_id, "client_secret": "wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = httpx.post(url, data={"grant_type": "password", "client_id": sg.client_id, "client_secret": sg.client_secret})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    r = httpx.post(url, data={"grant_type": "client_credentials", "client_id": sg.client_id,
                              "client_secret": sg.client_secret})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == stack.settings.token_ttl_seconds
    assert set(body["scope"].split()) == {"depositor", "examiner", "office-admin"}
