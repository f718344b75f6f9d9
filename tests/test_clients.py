"""The lifecycle of API clients: disable, enable, replace the secret. What an administrator
needs when a secret leaks: the change holds from the very next request, for new tokens and
for tokens already issued, and every change is in the audit log without the secret."""

from __future__ import annotations

import json

import httpx
import sqlalchemy as sa

from tests.support import token

OFFICES = "/v1/offices"


def new_client(sg, roles=("depositor",), name: str = "docketing") -> tuple[str, str]:
    with sg.client() as http:
        r = http.post("/v1/offices/SG/clients", json={"roles": list(roles), "name": name})
    assert r.status_code == 201, r.text
    return r.json()["client_id"], r.json()["client_secret"]


def grant(stack, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(f"{stack.url}/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                        "client_secret": secret})


def bearer(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def is_problem(r: httpx.Response, status: int, code: str | None = None) -> bool:
    return (r.status_code == status and r.headers["content-type"].startswith("application/problem+json")
            and (code is None or r.json()["code"] == code))


def audit_of(stack, admin: dict, action: str) -> list[dict]:
    r = httpx.get(f"{stack.url}/v1/audit", headers=admin, params={"action": action})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def listed(sg, client_id: str) -> dict:
    with sg.client() as http:
        r = http.get("/v1/offices/SG/clients")
    assert r.status_code == 200, r.text
    return next(c for c in r.json() if c["client_id"] == client_id)


def test_disable_ends_tokens_at_once_and_enable_restores_the_secret(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    client_id, secret = new_client(sg)
    old = token(stack.url, client_id, secret)
    assert httpx.get(f"{stack.url}{OFFICES}", headers=bearer(old)).status_code == 200
    assert listed(sg, client_id)["disabled_at"] is None

    with sg.client() as http:
        r = http.post(f"/v1/offices/SG/clients/{client_id}/disable")
        assert r.status_code == 200, r.text
        disabled_at = r.json()["disabled_at"]
        assert disabled_at and listed(sg, client_id)["disabled_at"] == disabled_at
        # Disabling again changes nothing, not even the time.
        assert http.post(f"/v1/offices/SG/clients/{client_id}/disable").json()["disabled_at"] == disabled_at

    assert is_problem(grant(stack, client_id, secret), 401, "oauth-invalid_client")
    r = httpx.get(f"{stack.url}{OFFICES}", headers=bearer(old))  # the token it already held
    assert is_problem(r, 401, "unauthenticated") and r.json()["reason"] == "client-disabled"

    with sg.client() as http:
        r = http.post(f"/v1/offices/SG/clients/{client_id}/enable")
    assert r.status_code == 200 and r.json()["disabled_at"] is None
    fresh = token(stack.url, client_id, secret)
    assert httpx.get(f"{stack.url}{OFFICES}", headers=bearer(fresh)).status_code == 200
    # A token from before the disabling does not come back with the client.
    r = httpx.get(f"{stack.url}{OFFICES}", headers=bearer(old))
    assert is_problem(r, 401) and r.json()["reason"] == "token-revoked"

    [disabled] = audit_of(stack, admin, "client.disable")
    [enabled] = audit_of(stack, admin, "client.enable")
    for entry in (disabled, enabled):
        assert entry["actor"] == sg.client_id and entry["subject"] == client_id and entry["office"] == "SG"


def test_a_new_secret_stops_the_old_one_and_its_tokens(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    client_id, secret = new_client(sg, roles=("depositor", "examiner"))
    old = token(stack.url, client_id, secret)

    with sg.client() as http:
        r = http.post(f"/v1/offices/SG/clients/{client_id}/secret")
    assert r.status_code == 200, r.text
    body = r.json()
    new = body["client_secret"]
    assert body["client_id"] == client_id and body["roles"] == ["depositor", "examiner"] and new != secret

    assert is_problem(grant(stack, client_id, secret), 401)
    assert is_problem(httpx.get(f"{stack.url}{OFFICES}", headers=bearer(old)), 401)
    assert httpx.get(f"{stack.url}{OFFICES}", headers=bearer(token(stack.url, client_id, new))).status_code == 200

    [entry] = audit_of(stack, admin, "client.rotate_secret")
    assert entry["actor"] == sg.client_id and entry["subject"] == client_id
    with stack.engine.connect() as c:
        log = json.dumps([list(row) for row in c.execute(sa.text("SELECT * FROM audit_entry"))], default=str)
    assert secret not in log and new not in log


def test_another_offices_client_is_unknown_and_depositors_are_refused(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    my = stack.office("MY", admin=admin)
    own_id, _ = new_client(sg)
    depositor = stack.office("SG", roles=("depositor",), admin=admin)

    for headers in (sg.headers, admin):  # not even the exchange's admin finds MY's client under SG
        for action in ("disable", "enable", "secret"):
            r = httpx.post(f"{stack.url}/v1/offices/SG/clients/{my.client_id}/{action}", headers=headers)
            assert is_problem(r, 404, "not-found"), (action, r.text)
            r = httpx.post(f"{stack.url}/v1/offices/SG/clients/cl_nobody/{action}", headers=headers)
            assert is_problem(r, 404, "not-found"), (action, r.text)
    r = httpx.post(f"{stack.url}/v1/offices/MY/clients/{my.client_id}/disable", headers=sg.headers)
    assert is_problem(r, 404, "not-found")  # another office's resources read as an unknown office's
    for action in ("disable", "enable", "secret"):
        r = httpx.post(f"{stack.url}/v1/offices/SG/clients/{own_id}/{action}", headers=depositor.headers)
        assert is_problem(r, 403), (action, r.text)
    # Nothing changed: MY's client still gets tokens, SG's client is not disabled.
    assert grant(stack, my.client_id, my.client_secret).status_code == 200
    assert listed(sg, own_id)["disabled_at"] is None
    assert audit_of(stack, admin, "client.disable") == [] and audit_of(stack, admin, "client.rotate_secret") == []


def test_a_client_cannot_disable_itself(stack):
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    r = httpx.post(f"{stack.url}/v1/offices/SG/clients/{sg.client_id}/disable", headers=sg.headers)
    assert is_problem(r, 409, "self-lockout") and "itself" in r.json()["detail"]
    assert httpx.get(f"{stack.url}{OFFICES}", headers=sg.headers).status_code == 200
    # The exchange's admin can, when the office's only admin client is the one that leaked.
    r = httpx.post(f"{stack.url}/v1/offices/SG/clients/{sg.client_id}/disable", headers=admin)
    assert r.status_code == 200 and r.json()["disabled_at"]
    assert is_problem(httpx.get(f"{stack.url}{OFFICES}", headers=sg.headers), 401)
