"""The authorisation matrix: one declarative table drives every route × caller × target.

Callers: anonymous, the exchange's admin, and SG's office-admin, depositor and examiner.
Targets: SG's own resources, MY's (partner under an active agreement), TH's (partner under a
suspended agreement), JP's (no agreement with SG). A route missing from the table fails the
test; so does any 2xx the table does not allow, and any non-2xx where it does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.support import deposit, manifest, new_key, sign
from tests.test_structure import api_routes

CALLERS = ("anonymous", "admin", "office-admin", "depositor", "examiner")
TARGETS = ("own", "partner", "suspended", "unrelated")
OFFICE = {"own": "SG", "partner": "MY", "suspended": "TH", "unrelated": "JP"}
NUMBER = {"SG": "10202301234X", "MY": "PI2022001234", "TH": "2301001234", "JP": "2022-123456"}
READERS = {"office-admin", "depositor", "examiner"}
CLIENTS = READERS | {"admin"}
_seq = itertools.count(1)


@dataclass
class M:
    """One row: how to call the route for a target, and which (caller, target) pairs may succeed."""

    method: str
    path: str
    build: Callable  # (world, target) -> (path, kwargs)
    allowed: Callable[[str, str], bool]
    targets: tuple = TARGETS
    notes: str = ""


@dataclass
class World:
    stack: object
    admin: dict
    sg: dict  # role -> headers
    kits: dict
    sg_ids: dict = field(default_factory=dict)  # role -> client id
    dossiers: dict = field(default_factory=dict)
    agreements: dict = field(default_factory=dict)

    def headers(self, caller: str) -> dict:
        if caller == "anonymous":
            return {}
        if caller == "admin":
            return self.admin
        return self.sg[caller]


def build_world(stack) -> World:
    admin = stack.admin()
    kits = {code: stack.office(code, admin=admin) for code in ("SG", "MY", "TH", "JP")}
    sg, sg_ids = {}, {}
    for role in READERS:
        r = httpx.post(f"{stack.url}/v1/offices/SG/clients", headers=admin, json={"roles": [role]})
        from tests.support import token
        sg[role] = {"Authorization": f"Bearer {token(stack.url, r.json()['client_id'], r.json()['client_secret'])}"}
        sg_ids[role] = r.json()["client_id"]
    w = World(stack, admin, sg, kits, sg_ids)

    def agreement(members, status="active"):
        r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json={
            "name": "m", "program": "ASPEC", "members": members, "document_types": ["SR", "ER", "CLAIMS"],
            "valid_from": "2020-01-01T00:00:00Z"})
        aid = r.json()["id"]
        if status != "active":
            httpx.post(f"{stack.url}/v1/agreements/{aid}/suspend", headers=admin)
        return aid

    w.agreements = {"own": agreement(["SG", "MY"]), "partner": agreement(["SG", "MY"]),
                    "suspended": agreement(["SG", "TH"], "suspended"), "unrelated": agreement(["MY", "JP"])}
    files = {"sr-1": b"%PDF sr", "er-1": b"%PDF er", "claims-1": b"%PDF claims"}
    types = {"sr-1": "SR", "er-1": "ER", "claims-1": "CLAIMS"}
    for target, code in OFFICE.items():
        m = manifest(code, files, number=NUMBER[code], types=types)
        m["application"]["priorities"] = ([{"office": o, "number": NUMBER[o], "date": "2022-01-01"}
                                           for o in ("MY", "TH", "JP")] if code == "SG" else [])
        r = deposit(kits[code], sign(m, kits[code].key), files)
        assert r.status_code == 201, r.text
        w.dossiers[target] = r.json()["dossier_id"]
    return w


def office_path(suffix=""):
    return lambda w, t: (f"/v1/offices/{OFFICE[t]}{suffix}", {})


def fresh_key(w, t):
    key = new_key()
    httpx.post(f"{w.stack.url}/v1/offices/{OFFICE[t]}/keys", headers=w.admin,
               json={"kid": key.kid, "alg": "ES256", "public_key_pem": key.public().pem})
    return key


def fresh_client(w, t, disabled: bool = False) -> str:
    code = OFFICE[t]
    r = httpx.post(f"{w.stack.url}/v1/offices/{code}/clients", headers=w.admin, json={"roles": ["depositor"]})
    assert r.status_code == 201, r.text
    client_id = r.json()["client_id"]
    if disabled:
        r = httpx.post(f"{w.stack.url}/v1/offices/{code}/clients/{client_id}/disable", headers=w.admin)
        assert r.status_code == 200, r.text
    return client_id


def own_or_admin(roles):
    return lambda c, t: c == "admin" or (c in roles and t == "own")


def fresh_agreement(w, state):
    r = httpx.post(f"{w.stack.url}/v1/agreements", headers=w.admin, json={
        "name": "t", "program": "CASE", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z"})
    aid = r.json()["id"]
    if state == "suspended":
        httpx.post(f"{w.stack.url}/v1/agreements/{aid}/suspend", headers=w.admin)
    return aid


def deposit_body(w, t):
    code = OFFICE[t]
    files = {"sr-1": f"%PDF {next(_seq)}".encode()}
    m = manifest(code, files, number=NUMBER[code])
    key = w.kits[code].key
    return "/v1/dossiers", {"data": {"manifest": sign(m, key)}, "files": {"sr-1": ("a.pdf", files["sr-1"])}}


def aspec_body(w):
    return {"route": "ASPEC", "application": {"office": "SG", "number": NUMBER["SG"]},
            "first_office_application": {"office": "MY", "number": NUMBER["MY"]},
            "relied_documents": [{"dossier_id": w.dossiers["partner"], "document_id": "sr-1"}]}


def filed_request(w):
    r = httpx.post(f"{w.stack.url}/v1/aspec-requests", headers=w.sg["examiner"], json=aspec_body(w))
    return r.json()["id"]


PUBLIC_HOOK = "https://93.184.216.34/hooks"  # a public address: no DNS needed, never contacted


def fresh_hook(w, t) -> str:
    r = httpx.post(f"{w.stack.url}/v1/offices/{OFFICE[t]}/webhooks", headers=w.admin, json={"url": PUBLIC_HOOK})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fresh_delivery(w, t) -> str:
    import uuid

    import sqlalchemy as sa

    hook, did = fresh_hook(w, t), f"msg_{uuid.uuid4().hex}"
    with w.stack.engine.begin() as c:
        c.execute(sa.text("INSERT INTO webhook_delivery (id, subscription_id, office_code, event_id, topic, payload, "
                          "status, attempts, next_attempt_at, created_at, dead_at) VALUES (:id, :s, :o, :e, 't', "
                          "'{}', 'dead', 3, now(), now(), now())"),
                  {"id": did, "s": hook, "o": OFFICE[t], "e": str(uuid.uuid4())})
    return did


def fresh_watch(w) -> str:
    r = httpx.post(f"{w.stack.url}/v1/watches", headers=w.sg["examiner"],
                   json={"application": {"office": "SG", "number": NUMBER["SG"]}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fresh_notification(w) -> str:
    import uuid

    import sqlalchemy as sa

    nid = str(uuid.uuid4())
    with w.stack.engine.begin() as c:
        c.execute(sa.text("INSERT INTO notification (id, office_code, recipient, kind, event_id, title, body, "
                          "created_at) VALUES (:id, 'SG', :r, 'watch', :e, 't', '{}', now())"),
                  {"id": nid, "r": w.sg_ids["examiner"], "e": str(uuid.uuid4())})
    return nid


visible = lambda c, t: c in READERS and t in ("own", "partner")  # noqa: E731 - a table of rules
anyone = lambda c, t: True  # noqa: E731 - a table of rules
any_client = lambda c, t: c in CLIENTS  # noqa: E731 - a table of rules
admin_only = lambda c, t: c == "admin"  # noqa: E731 - a table of rules
NO_TARGET = ("own",)

TABLE: dict[tuple[str, str], M] = {m.method + " " + m.path: m for m in [
    M("GET", "/healthz", lambda w, t: ("/healthz", {}), anyone, NO_TARGET),
    M("GET", "/readyz", lambda w, t: ("/readyz", {}), anyone, NO_TARGET),
    M("GET", "/metrics", lambda w, t: ("/metrics", {}), anyone, NO_TARGET),
    M("POST", "/oauth/token", lambda w, t: ("/oauth/token", {"data": {
        "grant_type": "client_credentials", "client_id": w.kits["SG"].client_id,
        "client_secret": w.kits["SG"].client_secret}}), anyone, NO_TARGET),
    M("GET", "/.well-known/jwks.json", lambda w, t: ("/.well-known/jwks.json", {}), anyone, NO_TARGET),
    M("POST", "/v1/offices", lambda w, t: ("/v1/offices", {"json": {
        "code": "Z" + "ABCDEFGHIJKLMNOPQRSTUVWXY"[next(_seq) % 25], "name": "z"}}), admin_only, NO_TARGET),
    M("GET", "/v1/offices", lambda w, t: ("/v1/offices", {}), any_client, NO_TARGET),
    M("GET", "/v1/offices/{code}", office_path(), any_client),
    M("PATCH", "/v1/offices/{code}", lambda w, t: (f"/v1/offices/{OFFICE[t]}", {"json": {"name": "renamed"}}),
      admin_only),
    M("POST", "/v1/offices/{code}/keys", lambda w, t: (f"/v1/offices/{OFFICE[t]}/keys", {"json": (lambda k: {
        "kid": k.kid, "alg": "ES256", "public_key_pem": k.public().pem})(new_key())}), own_or_admin({"office-admin"})),
    M("GET", "/v1/offices/{code}/keys", office_path("/keys"), any_client),
    M("GET", "/v1/offices/{code}/keys/{kid}", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/keys/{w.kits[OFFICE[t]].key.kid}", {}), any_client),
    M("POST", "/v1/offices/{code}/keys/{kid}/revoke", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/keys/{fresh_key(w, t).kid}/revoke", {"json": {}}), own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/clients", lambda w, t: (f"/v1/offices/{OFFICE[t]}/clients",
                                                          {"json": {"roles": ["examiner"]}}),
      own_or_admin({"office-admin"})),
    M("GET", "/v1/offices/{code}/clients", office_path("/clients"), own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/clients/{client_id}/disable", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/clients/{fresh_client(w, t)}/disable", {}), own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/clients/{client_id}/enable", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/clients/{fresh_client(w, t, disabled=True)}/enable", {}),
      own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/clients/{client_id}/secret", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/clients/{fresh_client(w, t)}/secret", {}), own_or_admin({"office-admin"})),
    M("POST", "/v1/applications", lambda w, t: ("/v1/applications", {"json": {
        "office": OFFICE[t], "number": f"X{next(_seq)}", "filing_date": "2023-01-01", "title": "t"}}),
      lambda c, t: c == "depositor" and t == "own"),
    M("GET", "/v1/applications", lambda w, t: ("/v1/applications", {"params": {"number": NUMBER["MY"]}}),
      lambda c, t: c in READERS, NO_TARGET),
    # Published bibliographic data is public; the dossiers listed in it are filtered by the policy.
    M("GET", "/v1/applications/{office}/{number}/family", lambda w, t: (
        f"/v1/applications/{OFFICE[t]}/{NUMBER[OFFICE[t]]}/family", {}), lambda c, t: c in READERS),
    M("GET", "/v1/applications/{office}/{number}/citations", lambda w, t: (
        f"/v1/applications/{OFFICE[t]}/{NUMBER[OFFICE[t]]}/citations", {}), lambda c, t: c in READERS),
    M("POST", "/v1/agreements", lambda w, t: ("/v1/agreements", {"json": {
        "name": "x", "program": "CASE", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z"}}), admin_only, NO_TARGET),
    M("GET", "/v1/agreements", lambda w, t: ("/v1/agreements", {}), any_client, NO_TARGET),
    M("GET", "/v1/agreements/{agreement_id}", lambda w, t: (f"/v1/agreements/{w.agreements[t]}", {}),
      lambda c, t: c == "admin" or (c in READERS and t != "unrelated")),
    M("POST", "/v1/agreements/{agreement_id}/suspend", lambda w, t: (
        f"/v1/agreements/{fresh_agreement(w, 'active')}/suspend", {}), admin_only, NO_TARGET),
    M("POST", "/v1/agreements/{agreement_id}/resume", lambda w, t: (
        f"/v1/agreements/{fresh_agreement(w, 'suspended')}/resume", {}), admin_only, NO_TARGET),
    M("POST", "/v1/agreements/{agreement_id}/terminate", lambda w, t: (
        f"/v1/agreements/{fresh_agreement(w, 'active')}/terminate", {}), admin_only, NO_TARGET),
    M("POST", "/v1/dossiers", deposit_body, lambda c, t: c == "depositor" and t == "own"),
    M("GET", "/v1/dossiers", lambda w, t: ("/v1/dossiers", {}), lambda c, t: c in READERS, NO_TARGET),
    M("GET", "/v1/dossiers/{dossier_id}", lambda w, t: (f"/v1/dossiers/{w.dossiers[t]}", {}), visible),
    M("GET", "/v1/dossiers/{dossier_id}/documents/{document_id}", lambda w, t: (
        f"/v1/dossiers/{w.dossiers[t]}/documents/sr-1", {}), visible),
    M("GET", "/v1/dossiers/{dossier_id}/signature", lambda w, t: (f"/v1/dossiers/{w.dossiers[t]}/signature", {}),
      visible),
    M("GET", "/v1/access/explain", lambda w, t: ("/v1/access/explain", {"params": {
        "dossier_id": w.dossiers[t], "office": "SG"}}), admin_only),
    M("POST", "/v1/aspec-requests", lambda w, t: ("/v1/aspec-requests", {"json": aspec_body(w)}),
      lambda c, t: c in ("depositor", "examiner"), NO_TARGET),
    M("GET", "/v1/aspec-requests", lambda w, t: ("/v1/aspec-requests", {}), any_client, NO_TARGET),
    M("GET", "/v1/aspec-requests/{request_id}", lambda w, t: (f"/v1/aspec-requests/{filed_request(w)}", {}),
      any_client, NO_TARGET),
    M("POST", "/v1/aspec-requests/{request_id}/withdraw", lambda w, t: (
        f"/v1/aspec-requests/{filed_request(w)}/withdraw", {}), lambda c, t: c in READERS, NO_TARGET),
    M("GET", "/v1/audit", lambda w, t: ("/v1/audit", {}), lambda c, t: c in ("admin", "office-admin"), NO_TARGET),
    M("GET", "/v1/stats", lambda w, t: ("/v1/stats", {}), lambda c, t: c in ("admin", "office-admin"), NO_TARGET),
    M("POST", "/v1/offices/{code}/webhooks", lambda w, t: (f"/v1/offices/{OFFICE[t]}/webhooks",
                                                           {"json": {"url": PUBLIC_HOOK}}),
      own_or_admin({"office-admin"})),
    M("GET", "/v1/offices/{code}/webhooks", office_path("/webhooks"), own_or_admin({"office-admin"})),
    M("DELETE", "/v1/offices/{code}/webhooks/{webhook_id}", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/webhooks/{fresh_hook(w, t)}", {}), own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/webhooks/{webhook_id}/enable", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/webhooks/{fresh_hook(w, t)}/enable", {}), own_or_admin({"office-admin"})),
    M("GET", "/v1/offices/{code}/deliveries", office_path("/deliveries"), own_or_admin({"office-admin"})),
    M("POST", "/v1/offices/{code}/deliveries/{delivery_id}/redeliver", lambda w, t: (
        f"/v1/offices/{OFFICE[t]}/deliveries/{fresh_delivery(w, t)}/redeliver", {}), own_or_admin({"office-admin"})),
    M("GET", "/v1/webhooks/public-key", lambda w, t: ("/v1/webhooks/public-key", {}), anyone, NO_TARGET),
    M("POST", "/v1/watches", lambda w, t: ("/v1/watches", {"json": {
        "application": {"office": "SG", "number": NUMBER["SG"]}}}), lambda c, t: c in READERS, NO_TARGET),
    M("GET", "/v1/watches", lambda w, t: ("/v1/watches", {}), lambda c, t: c in READERS, NO_TARGET),
    M("DELETE", "/v1/watches/{watch_id}", lambda w, t: (f"/v1/watches/{fresh_watch(w)}", {}),
      lambda c, t: c == "examiner", NO_TARGET, notes="only the watch's own client"),
    M("GET", "/v1/notifications", lambda w, t: ("/v1/notifications", {}), any_client, NO_TARGET),
    M("POST", "/v1/notifications/{notification_id}/read", lambda w, t: (
        f"/v1/notifications/{fresh_notification(w)}/read", {}), lambda c, t: c == "examiner", NO_TARGET),
    M("GET", "/v1/outbox", lambda w, t: ("/v1/outbox", {}), admin_only, NO_TARGET),
    M("POST", "/v1/outbox/requeue", lambda w, t: ("/v1/outbox/requeue", {}), admin_only, NO_TARGET),
    M("GET", "/v1/dossiers/{dossier_id}/timeline", lambda w, t: (f"/v1/dossiers/{w.dossiers[t]}/timeline", {}),
      lambda c, t: c == "admin" or (c in READERS and t == "own")),
]}


def test_every_route_is_in_the_table(tmp_path):
    from exchange.app import create_app
    from exchange.settings import Settings

    app = create_app(Settings.from_env({}, home=tmp_path))
    # The API's routes; the web pages (not in the OpenAPI schema) act through the same services
    # and are covered by the browser tests and by test_every_route_declares_its_access.
    routes = {f"{m} {r.path}" for r in api_routes(app) if r.include_in_schema for m in r.methods if m != "HEAD"}
    routes -= {"GET /openapi.json", "GET /docs", "GET /docs/oauth2-redirect", "GET /redoc"}
    assert sorted(routes - set(TABLE)) == []
    assert sorted(set(TABLE) - routes) == []


@pytest.fixture(scope="module")
def world(pg_s3_stack):
    pg_s3_stack.reset()
    return build_world(pg_s3_stack)


@pytest.mark.parametrize("route", sorted(TABLE))
def test_matrix(world, route):
    row = TABLE[route]
    failures = []
    for caller, target in itertools.product(CALLERS, row.targets):
        path, kwargs = row.build(world, target)
        r = httpx.request(row.method, f"{world.stack.url}{path}", headers=world.headers(caller), timeout=30, **kwargs)
        ok = 200 <= r.status_code < 300
        if ok != row.allowed(caller, target):
            failures.append(f"{caller} × {target}: {r.status_code} {r.text[:160]}")
        if not ok:
            assert r.headers["content-type"].startswith("application/problem+json"), (caller, target, r.text)
            expected = {401} if caller == "anonymous" else {403, 404}
            if not (r.status_code in expected or row.allowed(caller, target)):
                failures.append(f"{caller} × {target}: refused with {r.status_code}, expected one of {expected}")
    assert failures == []
