"""The same request many times at once, on every route that creates or changes a row: each answers
what it would answer alone (201, 200, or 409 for the losers of a race to create one thing), never
a 500, and exactly one thing is created. Both stacks."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support import deposit, manifest, new_key, sign

N = 8


def at_once(n: int, call) -> list[httpx.Response]:
    start = threading.Barrier(n)

    def run(i):
        start.wait()
        return call(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def codes(responses) -> list[int]:
    return sorted(r.status_code for r in responses)


def no_5xx(responses) -> None:
    bad = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert bad == []


def test_one_office_registered_many_times_at_once(stack):
    admin = stack.admin()
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/offices", headers=admin,
                                         json={"code": "TH", "name": "Thailand"}, timeout=30))
    no_5xx(rs)
    assert codes(rs) == [201] + [409] * (N - 1)
    assert all(r.headers["content-type"].startswith("application/problem+json") for r in rs if r.status_code == 409)
    assert stack.count("office") == 1


def test_one_key_registered_many_times_at_once(stack):
    admin = stack.admin()
    stack.office("SG", admin=admin)
    key = new_key("ES256")
    body = {"kid": "race-key", "alg": "ES256", "public_key_pem": key.public().pem}
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/offices/SG/keys", headers=admin, json=body, timeout=30))
    no_5xx(rs)
    assert codes(rs) == [201] + [409] * (N - 1)


def test_one_application_registered_many_times_at_once(stack):
    kit = stack.office("SG")
    body = manifest("SG", {})["application"]
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/applications", headers=kit.headers, json=body,
                                         timeout=30))
    no_5xx(rs)
    assert all(r.status_code in (200, 201) for r in rs), [r.text for r in rs]
    assert stack.count("application") == 1


def test_one_application_watched_many_times_at_once(stack):
    kit = stack.office("SG")
    docs = {"sr": b"%PDF-1.7 watched"}
    assert deposit(kit, sign(manifest("SG", docs), kit.key), docs).status_code == 201
    body = {"application": {"office": "SG", "number": "10202301234X"}, "scope": "family"}
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/watches", headers=kit.headers, json=body, timeout=30))
    no_5xx(rs)
    assert all(r.status_code in (200, 201, 409) for r in rs), [r.text for r in rs]


def test_one_client_secret_replaced_many_times_at_once(stack):
    admin = stack.admin()
    kit = stack.office("SG", admin=admin)
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/offices/SG/clients/{kit.client_id}/secret",
                                         headers=admin, timeout=30))
    no_5xx(rs)
    assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
    # Exactly one of the secrets handed out works: the last one written.
    working = [r.json()["client_secret"] for r in rs
               if httpx.post(f"{stack.url}/oauth/token", data={
                   "grant_type": "client_credentials", "client_id": kit.client_id,
                   "client_secret": r.json()["client_secret"]}).status_code == 200]
    assert len(working) == 1


def test_one_key_revoked_many_times_at_once(stack):
    admin = stack.admin()
    kit = stack.office("SG", admin=admin)
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/offices/SG/keys/{kit.key.kid}/revoke", headers=admin,
                                         json={}, timeout=30))
    no_5xx(rs)
    assert all(r.status_code in (200, 409) for r in rs), [r.text for r in rs]
    assert 200 in codes(rs)


@pytest.mark.parametrize("action", ["suspend", "terminate"])
def test_one_agreement_changed_many_times_at_once(stack, action):
    admin = stack.admin()
    stack.office("SG", admin=admin)
    stack.office("MY", admin=admin)
    r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json={
        "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z"})
    assert r.status_code == 201, r.text
    agreement = r.json()["id"]
    rs = at_once(N, lambda i: httpx.post(f"{stack.url}/v1/agreements/{agreement}/{action}", headers=admin,
                                         timeout=30))
    no_5xx(rs)
    assert all(r.status_code in (200, 409) for r in rs), [r.text for r in rs]
