"""No 500 from any input: each odd input the black-box attack found (issue 9, item 5) gets a
clear 4xx RFC 9457 problem, on SQLite + local directory and on PostgreSQL + S3 over HTTP, and
leaves nothing behind."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.support import b64u, deposit, manifest, sign

DOCS = {"sr-1": b"%PDF-1.4 search report"}
DEEP = "[" * 5000 + "]" * 5000


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("/problems/"), body
    if code is not None:
        assert body["code"] == code, body
    return body


def pointers(body: dict) -> list[str]:
    return [e["pointer"] for e in body.get("errors") or []]


def multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, dict]:
    """A multipart body built by hand: httpx would percent-encode a NUL in a part's name."""
    boundary = b"b0undary-for-bad-input"
    body = b"".join(b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n'
                    + data + b"\r\n" for name, data in parts)
    return body + b"--" + boundary + b"--\r\n", {"content-type": f"multipart/form-data; boundary={boundary.decode()}"}


def nothing_deposited(stack) -> None:
    assert stack.count("dossier") == 0
    assert stack.count("application") == 0
    assert stack.stored_objects() == []


# --- JSON nested thousands deep ----------------------------------------------------------------

def test_jws_header_nested_thousands_deep_is_a_malformed_manifest(stack):
    sg = stack.office("SG")
    header = b64u(('{"alg":"ES256","kid":"' + sg.key.kid + '","x":' + DEEP + "}").encode())
    token = f"{header}.{b64u(json.dumps(manifest('SG', DOCS)).encode())}.{b64u(b'signature')}"
    body = problem(deposit(sg, token, DOCS), 400, "manifest-malformed")
    assert "nested more than" in body["detail"]
    nothing_deposited(stack)


def test_bearer_token_with_a_header_nested_thousands_deep_is_unauthenticated(stack):
    token = f"{b64u(DEEP.encode())}.{b64u(b'{}')}.{b64u(b'signature')}"
    problem(httpx.get(f"{stack.url}/v1/offices", headers={"Authorization": f"Bearer {token}"}), 401,
            "unauthenticated")


@pytest.mark.parametrize("where", ["top", "application"])
def test_signed_manifest_nested_thousands_deep_is_an_invalid_manifest(stack, where):
    sg = stack.office("SG")
    payload = ('{"office":"SG","x":' + DEEP + "}" if where == "top"
               else '{"office":"SG","application":' + DEEP + "}").encode()
    body = problem(deposit(sg, sign(payload, sg.key), DOCS), 422, "manifest-invalid")
    assert "nested more than" in body["detail"]
    nothing_deposited(stack)


def test_json_bodies_nested_too_deep_are_refused_before_parsing(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    cases = [
        (admin, "POST", "/v1/offices", b'{"code":"XX","name":"x","settings":{"a":' + DEEP.encode() + b"}}"),
        (admin, "PATCH", "/v1/offices/SG", b'{"settings":{"a":' + b"[" * 40 + b"]" * 40 + b"}}"),
        (sg.headers, "POST", "/v1/applications", DEEP.encode()),
        (sg.headers, "POST", "/v1/aspec-requests", b'{"route":' + DEEP.encode() + b"}"),
        (sg.headers, "POST", "/v1/offices/SG/webhooks", b'{"url":"https://example.org/hook","events":' + DEEP.encode()
         + b"}"),
    ]
    for headers, method, path, content in cases:
        r = httpx.request(method, f"{stack.url}{path}", content=content,
                          headers={**headers, "content-type": "application/json"})
        problem(r, 400, "json-too-deep")
    assert stack.count("office") == 1
    # Settings a few levels deep (the real ones are two) are still taken.
    r = httpx.patch(f"{stack.url}/v1/offices/SG", json={"settings": {"a": [[[["deep enough"]]]]}}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["a"] == [[[["deep enough"]]]]


# --- instants UTC cannot represent -------------------------------------------------------------

EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("signed_at", EDGES)
def test_signed_at_outside_what_utc_can_represent_is_an_invalid_manifest(stack, signed_at):
    sg = stack.office("SG")
    m = manifest("SG", DOCS) | {"signed_at": signed_at}
    body = problem(deposit(sg, sign(m, sg.key), DOCS), 422, "manifest-invalid")
    assert pointers(body) == ["/signed_at"], body
    assert "UTC" in body["errors"][0]["detail"]
    nothing_deposited(stack)


@pytest.mark.parametrize("when", EDGES)
def test_key_and_agreement_instants_outside_utc_are_refused(stack, when):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    stack.office("MY", admin=admin)
    pem = sg.key.public().pem
    with httpx.Client(base_url=stack.url, headers=admin) as http:
        for field in ("not_before", "not_after"):
            body = problem(http.post("/v1/offices/SG/keys", json={"kid": f"k-{field}", "alg": "ES256",
                                                                   "public_key_pem": pem, field: when}), 422)
            assert pointers(body) == [f"/{field}"], body
        body = problem(http.post(f"/v1/offices/SG/keys/{sg.key.kid}/revoke", json={"revoked_at": when}), 422)
        assert pointers(body) == ["/revoked_at"], body
        agreement = {"name": "x", "program": "CASE", "members": ["SG", "MY"], "document_types": ["SR"],
                     "valid_from": "2020-01-01T00:00:00Z"}
        for field in ("valid_from", "valid_until"):
            body = problem(http.post("/v1/agreements", json=agreement | {field: when}), 422)
            assert pointers(body) == [f"/{field}"], body
        keys = http.get("/v1/offices/SG/keys").json()
    assert [(k["kid"], k["revoked_at"]) for k in keys] == [(sg.key.kid, None)]
    assert stack.count("agreement") == 0


def test_the_last_instants_utc_can_represent_are_taken(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    r = httpx.post(f"{stack.url}/v1/offices/SG/keys", headers=admin, json={
        "kid": "k-edges", "alg": "ES256", "public_key_pem": sg.key.public().pem,
        "not_before": "0001-01-01T00:00:00-14:00", "not_after": "9999-12-31T23:59:59+14:00"})
    assert r.status_code == 201, r.text
    assert r.json()["not_before"].startswith("0001-01-01T14:00:00")
    assert r.json()["not_after"].startswith("9999-12-31T09:59:59")


# --- numbers with no letter or digit -----------------------------------------------------------

BLANK_NUMBERS = ["---", "///", " . "]


def test_look_up_of_a_number_without_letters_or_digits(stack):
    sg = stack.office("SG")
    for number in BLANK_NUMBERS:
        body = problem(httpx.get(f"{stack.url}/v1/applications", params={"number": number}, headers=sg.headers),
                       422, "number-unreadable")
        assert body["detail"] == f"the number {number!r} has no letters or digits"


def test_registration_with_a_number_without_letters_or_digits(stack):
    sg = stack.office("SG")
    app = {"number": "10202301234X", "filing_date": "2023-03-01", "title": "t"}
    cases = [(case, number) for number in BLANK_NUMBERS for case in [
        (app | {"number": number}, "/number"),
        (app | {"priorities": [{"office": "MY", "number": number, "date": "2022-03-02"}]}, "/priorities/0/number"),
        (app | {"publication": {"number": number, "date": "2024-09-01"}}, "/publication/number"),
        (app | {"pct": number}, "/pct"),
    ]]
    for (body, pointer), _number in cases:
        answer = problem(httpx.post(f"{stack.url}/v1/applications", json=body, headers=sg.headers), 422,
                         "validation-failed")
        assert pointers(answer) == [pointer], answer
    assert stack.count("application") == 0


def test_manifest_with_a_number_without_letters_or_digits(stack):
    sg = stack.office("SG")
    for _number, (mutate, pointer) in [(number, case) for number in BLANK_NUMBERS for case in [
        (lambda m, n=number: m["application"].update(number=n), "/application/number"),
        (lambda m, n=number: m["application"]["priorities"][0].update(number=n), "/application/priorities/0/number"),
        (lambda m, n=number: m["application"]["publication"].update(number=n), "/application/publication/number"),
        (lambda m, n=number: m["application"].update(pct=n), "/application/pct"),
    ]]:
        m = manifest("SG", DOCS)
        mutate(m)
        body = problem(deposit(sg, sign(m, sg.key), DOCS), 422, "manifest-invalid")
        assert pointers(body) == [pointer], body
    nothing_deposited(stack)


def test_family_and_citations_of_a_number_without_letters_or_digits(stack):
    sg = stack.office("SG")
    for number, route in [(n, r) for n in ("---", " . ", "%2F%2F%2F") for r in ("family", "citations")]:
        r = httpx.get(f"{stack.url}/v1/applications/SG/{number}/{route}", headers=sg.headers)
        if number.startswith("%2F"):
            problem(r, 404, "not-found")  # a number with "/" is named by its key: "///" names no route
        else:
            assert "no letters or digits" in problem(r, 422, "number-unreadable")["detail"]


def test_aspec_request_and_watch_naming_a_number_without_letters_or_digits(stack):
    sg = stack.office("SG")
    for number in BLANK_NUMBERS:
        _aspec_and_watch(stack, sg, number)


def _aspec_and_watch(stack, sg, number) -> None:
    request = {"route": "ASPEC", "application": {"office": "SG", "number": number},
               "first_office_application": {"office": "MY", "number": number},
               "relied_documents": [{"dossier_id": "d", "document_id": "sr-1"}]}
    body = problem(httpx.post(f"{stack.url}/v1/aspec-requests", json=request, headers=sg.headers), 422)
    assert pointers(body) == ["/application/number", "/first_office_application/number"], body
    body = problem(httpx.post(f"{stack.url}/v1/watches", json={"application": {"office": "SG", "number": number}},
                              headers=sg.headers), 422)
    assert pointers(body) == ["/application/number"], body


# --- NUL ---------------------------------------------------------------------------------------

def test_nul_in_a_path_id_or_a_query_is_refused(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    asks = [
        (sg.headers, "GET", "/v1/dossiers/d%00x"),
        (sg.headers, "GET", "/v1/dossiers/d%00x/documents/sr-1"),
        (sg.headers, "GET", "/v1/dossiers/d/documents/sr%00"),
        (sg.headers, "GET", "/v1/dossiers/d%00x/signature"),
        (sg.headers, "GET", "/v1/offices/S%00"),
        (sg.headers, "GET", "/v1/offices/SG/keys/k%00"),
        (admin, "POST", "/v1/offices/SG/keys/k%00/revoke"),
        (admin, "POST", "/v1/offices/SG/clients/c%00/disable"),
        (sg.headers, "GET", "/v1/agreements/a%00"),
        (sg.headers, "GET", "/v1/aspec-requests/r%00"),
        (sg.headers, "GET", "/v1/applications/SG/123%00/family"),
        (sg.headers, "DELETE", "/v1/offices/SG/webhooks/w%00"),
        (sg.headers, "GET", "/v1/applications?number=12%003"),
        (sg.headers, "GET", "/v1/dossiers?office=S%00G"),
        (sg.headers, "GET", "/v1/dossiers?cursor=%00"),
        (admin, "GET", "/v1/audit?action=deposit%00"),
        (admin, "GET", "/v1/access/explain?dossier_id=d%00&office=SG"),
        (sg.headers, "GET", "/v1/offices/SG/deliveries?status=dead%00"),
    ]
    for headers, method, target in asks:
        r = httpx.request(method, f"{stack.url}{target}", headers=headers)
        assert "NUL" in problem(r, 400, "nul-character")["detail"], target
    # "%2500" is the text "%00", not a NUL: an ordinary look-up.
    r = httpx.get(f"{stack.url}/v1/applications?number=12%25003", headers=sg.headers)
    assert r.status_code == 200 and r.json() == []


def test_nul_in_a_json_string_or_key_is_refused(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    asks = [
        (admin, "POST", "/v1/offices", {"code": "XY", "name": "a\x00b"}),
        (admin, "PATCH", "/v1/offices/SG", {"settings": {"k\x00": 1}}),
        (admin, "POST", "/v1/offices/SG/clients", {"name": "\x00", "roles": ["examiner"]}),
        (sg.headers, "POST", "/v1/applications", {"number": "123", "filing_date": "2023-03-01", "title": "t\x00"}),
        (sg.headers, "POST", "/v1/offices/SG/webhooks", {"url": "https://example.org/\x00"}),
        (sg.headers, "POST", "/v1/watches", {"application": {"office": "SG", "number": "1\x002"}}),
    ]
    for headers, method, path, body in asks:
        r = httpx.request(method, f"{stack.url}{path}", json=body, headers=headers)
        assert "NUL" in problem(r, 400, "nul-character")["detail"], path
    assert stack.count("application") == 0
    assert stack.count("office") == 1
    # An escaped backslash followed by "u0000" is six characters of text, not a NUL.
    r = httpx.post(f"{stack.url}/v1/applications", headers={**sg.headers, "content-type": "application/json"},
                   content=b'{"number": "123", "filing_date": "2023-03-01", "title": "\\\\u0000"}')
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "\\u0000"


def test_lone_surrogate_in_a_json_string_is_refused(stack):
    sg = stack.office("SG")
    headers = {**sg.headers, "content-type": "application/json"}
    r = httpx.post(f"{stack.url}/v1/applications", headers=headers,
                   content=b'{"number": "123", "filing_date": "2023-03-01", "title": "\\ud800"}')
    problem(r, 400, "invalid-unicode")
    # A pair of surrogate escapes is one character (an emoji), and welcome.
    r = httpx.post(f"{stack.url}/v1/applications", headers=headers,
                   content=b'{"number": "123", "filing_date": "2023-03-01", "title": "\\ud83d\\ude00"}')
    assert r.status_code == 201 and r.json()["title"] == "\U0001f600", r.text


@pytest.mark.parametrize("encoding", ["urlencoded", "percent-escaped"])
def test_nul_in_a_token_request_or_sign_in_form_is_refused(stack, encoding):
    for path, fields in [("/oauth/token", {"grant_type": "client_credentials", "client_id": "cl_\x00",
                                           "client_secret": "s"}),
                         ("/signin", {"username": "admin\x00", "password": "p"})]:
        if encoding == "urlencoded":
            r = httpx.post(f"{stack.url}{path}", data=fields)
        else:
            content = "&".join(f"{k}={v.replace(chr(0), '%00')}" for k, v in fields.items())
            r = httpx.post(f"{stack.url}{path}", content=content.encode(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
        assert "NUL" in problem(r, 400, "nul-character")["detail"], path


def test_nul_in_a_multipart_token_request_is_a_client_error(stack):
    """Multipart bodies are not buffered by the guard: the database's refusal of NUL (PostgreSQL)
    is mapped to a 400 as the last line; SQLite keeps NUL and simply finds no such client."""
    body, headers = multipart([(b"grant_type", b"client_credentials"), (b"client_id", b"cl_\x00"),
                               (b"client_secret", b"s")])
    r = httpx.post(f"{stack.url}/oauth/token", content=body, headers=headers)
    if stack.name == "pg-s3":
        problem(r, 400, "nul-character")
    else:
        assert r.status_code == 401, r.text


def test_nul_in_a_deposit_is_refused_and_the_refusal_audited(stack):
    sg = stack.office("SG")
    token = sign(manifest("SG", DOCS), sg.key).encode()
    # In a part's name, in the manifest part, in a signed manifest string, in the JWS header's kid.
    body, headers = multipart([(b"manifest", token), (b"sr\x001", DOCS["sr-1"])])
    problem(httpx.post(f"{stack.url}/v1/dossiers", content=body, headers={**sg.headers, **headers}), 400,
            "multipart-malformed")
    body, headers = multipart([(b"manifest", token[:20] + b"\x00" + token[20:]), (b"sr-1", DOCS["sr-1"])])
    problem(httpx.post(f"{stack.url}/v1/dossiers", content=body, headers={**sg.headers, **headers}), 400,
            "manifest-malformed")
    m = manifest("SG", DOCS)
    m["documents"][0]["title"] = "search\x00report"
    answer = problem(deposit(sg, sign(m, sg.key), DOCS), 422, "manifest-invalid")
    assert "/documents/0/title" in answer["errors"][0]["detail"]
    header = b64u(json.dumps({"alg": "ES256", "kid": sg.key.kid + "\x00"}).encode())
    forged = f"{header}.{b64u(json.dumps(manifest('SG', DOCS)).encode())}.{b64u(b'signature')}"
    problem(deposit(sg, forged, DOCS), 400, "manifest-malformed")
    nothing_deposited(stack)
    with stack.engine.connect() as c:
        import sqlalchemy as sa

        reasons = sorted(c.execute(sa.text(
            "SELECT reason FROM audit_entry WHERE action = 'dossier.deposit' AND outcome = 'refused'")).scalars())
    assert reasons == ["manifest-invalid", "manifest-malformed", "manifest-malformed", "multipart-malformed"]


# --- other inputs ------------------------------------------------------------------------------

def test_webhook_for_an_office_that_does_not_exist_is_not_found(stack):
    admin = stack.admin()
    r = httpx.post(f"{stack.url}/v1/offices/ZZ/webhooks", json={"url": "https://example.org/hook"}, headers=admin)
    assert "ZZ" in problem(r, 404, "not-found")["detail"]
    assert stack.count("webhook_subscription") == 0


def _cursor(values) -> str:
    raw = values if isinstance(values, str) else json.dumps(values)  # a str: sent as it is, not as JSON
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


CRAFTED = [[1, "x"], ["x", "y"], [{}], ["abc"], [10**30], [True], ["0001-01-01T00:00:00+14:00", "x"],
           ["2024-01-01T00:00:00Z", "a\x00"], [None, None], DEEP]


def test_crafted_cursors_are_refused(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    for values, (path, headers) in [(v, p) for v in CRAFTED for p in (("/v1/dossiers", sg.headers),
                                                                        ("/v1/audit", admin))]:
        r = httpx.get(f"{stack.url}{path}", params={"cursor": _cursor(values)}, headers=headers)
        assert problem(r, 422, "invalid-request")["detail"] == "the cursor is not one this API gave out"


def test_a_flash_cookie_nested_thousands_deep_shows_no_message():
    from starlette.requests import Request

    from exchange.web.admin import FLASH, _flash_of

    cookie = f"{FLASH}={DEEP}".encode()
    request = Request({"type": "http", "method": "GET", "path": "/admin", "headers": [(b"cookie", cookie)]})
    assert _flash_of(request) == []
    ok = Request({"type": "http", "method": "GET", "path": "/admin",
                  "headers": [(b"cookie", f'{FLASH}=["ok", "Saved"]'.encode())]})
    assert _flash_of(ok) == [{"kind": "ok", "text": "Saved"}]
