"""Nothing revealed (API contract, "What a partner sees of a dossier"): what a caller may not
see answers exactly like what does not exist, compared byte for byte (the request id is the
caller's own, sent the same both times; ids the caller sent are echoed where it sent them).

- An ASPEC request relying on a dossier the SO cannot see, of an application that does not
  correspond to its own, reads like one relying on a dossier that does not exist, and leaves
  nothing behind that the SO could read (request, audit entry, event).
- Another office's administrative routes, API and web pages, answer what an office code that
  does not exist answers: 404, the same problem.
- ``/docs`` and ``/redoc`` load nothing from a third-party host and cannot be framed.
- The demo's webhook receiver shows what it received to the demo's administrator only.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import re
import tomllib
import uuid

import httpx
import pytest
from fastapi.routing import APIRoute

from crypto import webhooks
from dossiers import users
from exchange.web.auth import COOKIE
from tests.support import ServerThread, deposit, manifest, sign, token
from tests.test_aspec import Aspec, fo_dossier
from tests.test_structure import ROOT, access_of, api_routes

RID = "nothing-revealed-0001"  # the caller's request id, the same for both answers compared
UNKNOWN_OFFICE = "ZZ"  # an ST.3-shaped code no office has
PUBLIC_HOOK = "https://93.184.216.34/hooks"  # a public address: never contacted here


def same_answer(a: httpx.Response, b: httpx.Response, *, b_to_a: dict[str, str] | None = None) -> None:
    """Status, headers (but the date) and body byte for byte, after putting ``a``'s values for
    the ids the caller sent differently in ``b`` (``b_to_a``)."""
    body = b.content
    for theirs, ours in (b_to_a or {}).items():
        body = body.replace(theirs.encode(), ours.encode())
    assert (a.status_code, a.content) == (b.status_code, body)
    skip = {"date", "content-length"}
    assert {k: v for k, v in a.headers.items() if k not in skip} == \
        {k: v for k, v in b.headers.items() if k not in skip}
    assert int(a.headers["content-length"]) == len(a.content) and len(a.content) == len(body)


# --- ASPEC requests ----------------------------------------------------------------------------

def traces(w: Aspec) -> tuple:
    """Everything a filed request leaves: rows, events, and the audit log as SG's office-admin reads it."""
    audit = httpx.get(f"{w.stack.url}/v1/audit", headers=w.k["SG"].headers, params={"limit": 200})
    assert audit.status_code == 200, audit.text
    return (w.stack.count("aspec_request"), w.stack.count("audit_entry"), w.stack.count("outbox_event"),
            audit.json())


def aspec_post(w: Aspec, number: str, relied: list[tuple[str, str]], fo_number: str = "PI2022001234"):
    body = {"route": "ASPEC", "application": {"office": "SG", "number": number},
            "first_office_application": {"office": "MY", "number": fo_number},
            "relied_documents": [{"dossier_id": d, "document_id": i} for d, i in relied]}
    return httpx.post(f"{w.stack.url}/v1/aspec-requests", json=body,
                      headers={**w.k["SG"].headers, "X-Request-Id": RID})


def test_relying_on_a_hidden_dossier_of_another_family_reads_as_relying_on_none(stack):
    w = Aspec(stack)  # MY's dossier on PI2022001234 is unpublished: SG cannot see it
    w.register("SG", "10202307777B")  # no priority: corresponds to nothing of MY's
    assert httpx.get(f"{stack.url}/v1/dossiers/{w.dossier}", headers=w.k["SG"].headers).status_code == 404
    hidden, unknown = w.dossier, str(uuid.uuid4())
    docs = ("sr-1", "er-1", "claims-1")
    before = traces(w)

    on_hidden = aspec_post(w, "10202307777B", [(hidden, d) for d in docs])
    on_unknown = aspec_post(w, "10202307777B", [(unknown, d) for d in docs])
    assert on_hidden.status_code == 422 and on_hidden.json()["code"] == "relied-document-unknown", on_hidden.text
    assert on_hidden.json()["documents"] == [f"{hidden}/{d}" for d in docs]
    same_answer(on_hidden, on_unknown, b_to_a={unknown: hidden})

    # A document that exists in the hidden dossier, and one that does not, read alike.
    same_answer(aspec_post(w, "10202307777B", [(hidden, "sr-1")]), aspec_post(w, "10202307777B", [(hidden, "nope")]),
                b_to_a={"nope": "sr-1"})
    # The first office's application named by a number it has, or by one it does not have.
    same_answer(aspec_post(w, "10202307777B", [(hidden, "sr-1")]),
                aspec_post(w, "10202307777B", [(hidden, "sr-1")], fo_number="PI2099999999"))
    same_answer(aspec_post(w, "10202307777B", [(hidden, "sr-1")]),
                aspec_post(w, "10202307777B", [(unknown, "sr-1")], fo_number="PI2099999999"),
                b_to_a={unknown: hidden})
    # Nothing was recorded, audited or announced for any of them.
    assert traces(w) == before

    # The same hidden dossier, relied on for SG's application that corresponds: the request is
    # what opens it (decided, recorded, audited); then SG sees it, and another of its
    # applications relying on it is decided too, with the reason.
    r = aspec_post(w, "10202301234X", [(hidden, d) for d in docs])
    assert r.status_code == 201 and r.json()["status"] == "accepted", r.text
    assert traces(w)[:3] != before[:3]
    r = aspec_post(w, "10202307777B", [(hidden, d) for d in docs])
    assert r.status_code == 201 and r.json()["reasons"] == ["NOT_CORRESPONDING"], r.text


def test_a_visible_dossier_of_another_family_is_decided_not_corresponding(stack):
    w = Aspec(stack)
    w.register("SG", "10202307777B")
    published = fo_dossier(w.k["MY"], published=True)  # SG sees it: its 10202301234X corresponds
    assert httpx.get(f"{stack.url}/v1/dossiers/{published}", headers=w.k["SG"].headers).status_code == 200
    r = aspec_post(w, "10202307777B", [(published, d) for d in ("sr-1", "er-1", "claims-1")])
    assert r.status_code == 201 and r.json()["reasons"] == ["NOT_CORRESPONDING"], r.text


def test_another_offices_aspec_request_reads_as_an_unknown_one(stack):
    w = Aspec(stack)
    rid = w.request().json()["id"]  # SG's request on MY's application; TH is neither
    th = {**w.k["TH"].headers, "X-Request-Id": RID}
    unknown = str(uuid.uuid4())
    for method, suffix in (("GET", ""), ("POST", "/withdraw")):
        theirs = httpx.request(method, f"{stack.url}/v1/aspec-requests/{rid}{suffix}", headers=th)
        none = httpx.request(method, f"{stack.url}/v1/aspec-requests/{unknown}{suffix}", headers=th)
        assert theirs.status_code == 404, theirs.text
        same_answer(theirs, none, b_to_a={unknown: rid})
    listed = httpx.get(f"{stack.url}/v1/aspec-requests", params={"office": "SG"}, headers=th)
    assert listed.status_code == 200 and listed.json() == []


# --- another office's administrative routes --------------------------------------------------

# Routes with an office in the path whose answer is public by design: any client reads the
# offices, their keys (to verify signatures offline) and published bibliographic data.
PUBLIC_BY_DESIGN = {"GET /v1/offices/{code}", "GET /v1/offices/{code}/keys", "GET /v1/offices/{code}/keys/{kid}"}


def query_params(route: APIRoute) -> set[str]:
    found, todo = set(), [route.dependant]
    while todo:
        d = todo.pop()
        found |= {p.name for p in d.query_params}
        todo.extend(d.dependencies)
    return found


def office_routes(app) -> list[tuple[str, APIRoute, str]]:
    """(method path, route, how the office is named) for every API route naming an office."""
    out = []
    for r in api_routes(app):
        where = "path" if "{code}" in r.path or "{office}" in r.path else (
            "query" if "office" in query_params(r) else None)
        if where:
            out += [(f"{m} {r.path}", r, where) for m in sorted(r.methods - {"HEAD"})]
    return out


@pytest.fixture
def two_offices(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    my = stack.office("MY", admin=admin)
    files = {"sr-1": b"%PDF MY's search report"}  # MY's dossier and application, none of it SG's to see
    m = manifest("MY", files, number="PI2022001234")
    m["application"]["publication"] = None
    assert deposit(my, sign(m, my.key), files).status_code == 201
    r = httpx.post(f"{stack.url}/v1/offices/MY/webhooks", headers=admin, json={"url": PUBLIC_HOOK})
    assert r.status_code == 201, r.text
    ids = {"kid": my.key.kid, "client_id": my.client_id, "webhook_id": r.json()["id"],
           "delivery_id": f"msg_{uuid.uuid4().hex}", "number": "PI2022001234"}
    r = httpx.post(f"{stack.url}/v1/offices/SG/clients", headers=admin, json={"roles": ["office-admin"]})
    office_admin = {"Authorization": f"Bearer {token(stack.url, r.json()['client_id'], r.json()['client_secret'])}"}
    return admin, {"office-admin": office_admin, "all roles": sg.headers}, ids


def fill(path: str, code: str, ids: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: code if m[1] in ("code", "office") else ids.get(m[1], "x"), path)


def normalised(r: httpx.Response, code: str) -> tuple:
    """The answer with the office code the caller sent put back as ``{code}``: in the problem's
    ``instance`` (the path asked) and ``detail``; everything else must be the same."""
    if not r.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
        return r.status_code, r.headers.get("content-type"), r.content
    body = r.json()
    if isinstance(body, dict):
        body.pop("instance", None)
        if isinstance(body.get("detail"), str):
            body["detail"] = re.sub(rf"\b{code}\b", "{code}", body["detail"])
    return r.status_code, r.headers["content-type"], body


def test_another_offices_admin_routes_answer_as_an_unknown_office(stack, two_offices):
    admin, callers, ids = two_offices
    app = stack.server.config.app
    routes = office_routes(app)
    scoped = [(name, r) for name, r, where in routes
              if where == "path" and any(a[0] == "office" for a in access_of(r.dependant))]
    assert len(scoped) >= 12, [n for n, _ in scoped]  # keys, clients, webhooks, deliveries...
    failures = []
    for caller, headers in callers.items():
        headers = {**headers, "X-Request-Id": RID}
        for name, route, where in routes:
            if name in PUBLIC_BY_DESIGN:
                continue
            method = name.split()[0]
            kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            answers = {}
            for code in ("MY", UNKNOWN_OFFICE):
                if where == "path":
                    answers[code] = httpx.request(method, stack.url + fill(route.path, code, ids), headers=headers,
                                                  timeout=30, **kwargs)
                else:
                    answers[code] = httpx.request(method, stack.url + fill(route.path, "SG", ids),
                                                  params={"office": code}, headers=headers, timeout=30, **kwargs)
            mine, none = (normalised(answers[c], c) for c in ("MY", UNKNOWN_OFFICE))
            if mine != none:
                failures.append(f"{caller} {name}: MY {mine} ≠ {UNKNOWN_OFFICE} {none}")
            if (name, route) in scoped and not (answers["MY"].status_code == 404
                                                and answers["MY"].json()["code"] == "not-found"):
                failures.append(f"{caller} {name}: {answers['MY'].status_code} {answers['MY'].text[:200]}")
    assert failures == []
    # The office-scoped query parameters refuse another office as an unknown one, 404.
    for path in ("/v1/audit", "/v1/stats"):
        r = httpx.get(stack.url + path, params={"office": "MY"}, headers=callers["office-admin"])
        assert r.status_code == 404 and r.json()["detail"] == "no office MY", r.text
        assert httpx.get(stack.url + path, params={"office": "SG"}, headers=callers["office-admin"]).status_code == 200
    # Nothing of MY's changed: its key is not revoked, its client not disabled, its hook active.
    assert httpx.get(f"{stack.url}/v1/offices/MY/keys/{ids['kid']}", headers=admin).json()["revoked_at"] is None
    assert [c["disabled_at"] for c in httpx.get(f"{stack.url}/v1/offices/MY/clients", headers=admin).json()] == [None]
    assert [h["status"] for h in httpx.get(f"{stack.url}/v1/offices/MY/webhooks", headers=admin).json()] == ["active"]


def test_another_offices_admin_pages_answer_as_an_unknown_office(stack):
    admin = stack.admin()
    for code in ("SG", "MY"):
        created = httpx.post(f"{stack.url}/v1/offices", headers=admin, json={"code": code, "name": code})
        assert created.status_code == 201
    with stack.session_factory.begin() as s:
        user = users.create_user(s, username="sg-admin@test", display_name="SG admin", office="SG",
                                 roles=["office-admin"], password="correct horse battery staple", email=None,
                                 actor="test")
        cookie, _ = users.open_session(s, user)
    web = httpx.Client(base_url=stack.url, cookies={COOKIE: cookie}, headers={"X-Request-Id": RID}, timeout=30)
    app = stack.server.config.app
    pages = [(m, r.path, any(a[0] == "web-office" for a in access_of(r.dependant))) for r in api_routes(app)
             if "{code}" in r.path and not r.path.startswith("/v1/") for m in sorted(r.methods - {"HEAD"})]
    assert sum(scoped for _, _, scoped in pages) >= 10, pages
    ids = {"client_id": "cl_x", "user_id": "u", "webhook_id": "w", "delivery_id": "d", "change": "disable"}
    with web:
        assert web.get("/admin/offices/SG").status_code == 200  # its own office's page
        for method, path, scoped in pages:
            mine = web.request(method, fill(path, "MY", ids), data={"csrf_token": "x"} if method == "POST" else None)
            none = web.request(method, fill(path, UNKNOWN_OFFICE, ids),
                               data={"csrf_token": "x"} if method == "POST" else None)
            if scoped:  # the office's own pages; others (the exchange admin's) refuse every office alike
                assert mine.status_code == 404 and "no office MY" in mine.text, (method, path, mine.status_code)
            same_answer(mine, none, b_to_a={f"no office {UNKNOWN_OFFICE}": "no office MY"})


# --- /docs and /redoc --------------------------------------------------------------------------

VENDORED = {  # exchange/web/static/vendor/README.md
    "swagger-ui-bundle.js": "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    "swagger-ui.css": "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
    "favicon.png": "3ed612f41e050ca5e7000cad6f1cbe7e7da39f65fca99c02e99e6591056e5837",
    "redoc.standalone.js": "dcaf76612bc4a3fbcc923a8966dee2f6146a5f32e5ce1b6f02dd60cbbf89500b",
}
VENDOR_DIR = ROOT / "exchange" / "web" / "static" / "vendor"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_reference_loads_only_from_the_exchange_and_cannot_be_framed(pg_stack, page):
    r = httpx.get(pg_stack.url + page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["x-frame-options"] == "DENY"
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
    assert csp["frame-ancestors"] == ["'none'"] and csp["default-src"] == ["'self'"]
    assert all(not re.search(r"https?:|\*", src) for d in csp.values() for src in d), csp
    # The page's inline script, if any, is allowed by its digest, nothing else inline.
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert sorted(csp["script-src"]) == sorted(["'self'"] + [
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline])
    assert not re.search(r"https?://", r.text), re.findall(r"https?://[^\s\"'<>]+", r.text)
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", r.text)
    assets += re.findall(r"""(?:url|spec-url):?\s*=?\s*["']([^"']+)["']""", r.text)
    assert {"/openapi.json"} < set(assets) and all(a.startswith("/") and not a.startswith("//") for a in assets)
    for asset in set(assets):
        got = httpx.get(pg_stack.url + asset)
        assert got.status_code == 200, asset
        name = asset.rsplit("/", 1)[-1]
        if name in VENDORED:
            assert hashlib.sha256(got.content).hexdigest() == VENDORED[name], name
    assert {a.rsplit("/", 1)[-1] for a in assets} & set(VENDORED)


def test_the_vendored_assets_are_the_recorded_ones_and_are_packaged():
    for name, digest in VENDORED.items():
        assert hashlib.sha256((VENDOR_DIR / name).read_bytes()).hexdigest() == digest, name
        assert digest in (VENDOR_DIR / "README.md").read_text(), name
    # setuptools' package-data patterns are globs that do not recurse into folders.
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["exchange"]
    packaged = {p for pattern in patterns for p in glob.glob(pattern, root_dir=ROOT / "exchange")}
    assert {f"web/static/vendor/{name}" for name in VENDORED} <= packaged


def test_the_default_cdn_pages_are_gone(pg_stack):
    for path in ("/docs/oauth2-redirect",):
        assert httpx.get(pg_stack.url + path).status_code == 404
    schema = httpx.get(pg_stack.url + "/openapi.json").json()
    assert not {"/docs", "/redoc"} & set(schema["paths"])


# --- the demo's webhook receiver ---------------------------------------------------------------

@pytest.fixture
def demo_sink(pg_stack, tmp_path):
    """The exchange on the stack's database with the demo's receiver mounted, as ``exchange
    demo`` serves it, and the demo's credentials file naming SG's webhook secret."""
    from exchange.app import create_app
    from exchange.demo import sink
    from exchange.settings import Settings

    settings = Settings.from_env({}, home=tmp_path, database_url=pg_stack.settings.database_url,
                                 storage_url=pg_stack.settings.storage_url,
                                 broker_url=f"filesystem://{tmp_path / 'broker'}", public_url="http://exchange.test")
    secret = webhooks.new_secret()
    (tmp_path / "demo.json").write_text(json.dumps({"webhook_secrets": {"SG": secret}}))
    server = ServerThread(create_app(settings, store=pg_stack.store, session_factory=pg_stack.session_factory,
                                     extra_routers=(sink.router,))).start()
    try:
        yield server.url, secret, pg_stack, tmp_path
    finally:
        server.stop()


def delivery(secret: str, body: bytes, msg_id: str = "msg_1") -> dict:
    import time

    return {**webhooks.headers(msg_id, int(time.time()), body, secret=secret), "content-type": "application/json"}


def test_the_demo_receiver_shows_what_it_received_to_the_demo_admin_only(demo_sink):
    url, secret, stack, _home = demo_sink
    body = json.dumps({"type": "dossier.deposited", "data": {"dossier_id": "d1"}}).encode()
    assert httpx.post(f"{url}/_demo/webhooks/SG", content=body, headers=delivery(secret, body)).status_code == 200

    assert httpx.get(f"{url}/_demo/webhooks").status_code == 401  # anonymous
    browser = httpx.get(f"{url}/_demo/webhooks", headers={"Accept": "text/html"})
    assert browser.status_code == 303 and browser.headers["location"].startswith("/signin?next=")
    office = stack.office("SG")
    r = httpx.get(f"{url}/_demo/webhooks", headers=office.headers)  # an office's client, all roles
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    with stack.session_factory.begin() as s:
        examiner = users.create_user(s, username="ex@test", display_name="Ex", office="SG", roles=["examiner"],
                                     password="correct horse battery staple", email=None, actor="test")
        person = users.create_user(s, username="root@test", display_name="Root", office=None, roles=["admin"],
                                   password="correct horse battery staple", email=None, actor="test")
        examiner_cookie, _ = users.open_session(s, examiner)
        admin_cookie, _ = users.open_session(s, person)
    r = httpx.get(f"{url}/_demo/webhooks", cookies={COOKIE: examiner_cookie}, headers={"Accept": "text/html"})
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
    assert "dossier.deposited" not in r.text

    expected = [{"office": "SG", "webhook_id": "msg_1", "verified": True,
                 "event": {"type": "dossier.deposited", "data": {"dossier_id": "d1"}}}]
    r = httpx.get(f"{url}/_demo/webhooks", headers=stack.admin())  # the admin's API client
    assert r.status_code == 200 and r.json() == expected
    r = httpx.get(f"{url}/_demo/webhooks", cookies={COOKIE: admin_cookie})  # the admin signed in
    assert r.status_code == 200 and r.json() == expected


def test_the_demo_receiver_keeps_only_signed_deliveries_for_its_offices(demo_sink):
    url, secret, stack, home = demo_sink
    body = b'{"type": "forged"}'
    forged = "whsec_" + base64.b64encode(b"A" * 32).decode()
    for office, headers in (("SG", delivery(forged, body)), ("SG", {}), ("XX", delivery(forged, body)),
                            ("MY", delivery(secret, body))):
        r = httpx.post(f"{url}/_demo/webhooks/{office}", content=body, headers=headers)
        assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json"), r.text
    big = b"{" + b" " * (1 << 21) + b"}"
    r = httpx.post(f"{url}/_demo/webhooks/SG", content=big, headers=delivery(secret, big))
    assert r.status_code == 422, r.text
    assert httpx.get(f"{url}/_demo/webhooks", headers=stack.admin()).json() == []
    assert not (home / "demo-webhooks.jsonl").exists()
