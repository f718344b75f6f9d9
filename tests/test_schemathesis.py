"""Schemathesis over the running exchange's own ``/openapi.json``: every operation, as the
exchange's admin and as an office client (depositor, examiner and office-admin), on both
stacks. No answer may be a 5xx, and every answer must be one the document declares (status
code, media type, body schema).

Bounded: a few examples per operation (schema-valid and schema-violating ones, with random
path ids and with the ids of things that exist), derandomized so that every run sends the same
requests, no shrinking. Each failure is recorded with a curl command that replays it; the test
fails at the end listing all of them.
"""

from __future__ import annotations

import time

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import deposit, manifest, sign
from tests.test_structure import api_routes

EXAMPLES = 3  # per strategy and operation: random ids, real ids, and schema-violating input
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
ROLES = {"admin": {"admin"}, "office": {"depositor", "examiner", "office-admin"}}
# /readyz answers 503 by design while a part it watches (the broker's worker) is missing.
SKIPPED = {("GET", "/readyz")}


def _world(stack) -> dict:
    """Two offices, keys, an agreement and a dossier: the ids real requests would name."""
    admin = stack.admin()
    sg = stack.office("SG", admin=admin)
    spare = stack.office("SG", roles=("depositor",), admin=admin)  # the one to disable, not the caller
    stack.office("MY", admin=admin)
    docs = {"sr-1": b"%PDF-1.4 search report"}
    r = deposit(sg, sign(manifest("SG", docs), sg.key), docs)
    assert r.status_code == 201, r.text
    dossier_id = r.json()["dossier_id"]
    with httpx.Client(base_url=stack.url, headers=admin) as http:
        r = http.post("/v1/agreements", json={
            "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY"], "document_types": ["SR", "WO"],
            "valid_from": "2020-01-01T00:00:00Z"})
        assert r.status_code == 201, r.text
        agreement_id = r.json()["id"]
    known = {"code": "SG", "office": "SG", "kid": spare.key.kid, "client_id": spare.client_id,
             "number": "10202301234X", "dossier_id": dossier_id, "document_id": "sr-1", "agreement_id": agreement_id}
    return {"admin": admin, "office": sg.headers, "known": known}


def _markers(dependant) -> list:
    found = [dep.call.__access__ for dep in dependant.dependencies if hasattr(dep.call, "__access__")]
    for dep in dependant.dependencies:
        found += _markers(dep)
    return found


def _reachable(app, roles: set[str]) -> set[tuple[str, str]]:
    """(method, path) of the operations a client holding ``roles`` passes the access check of."""
    out = set()
    for route in api_routes(app):
        for marker in _markers(route.dependant):
            if marker == "public" or (isinstance(marker, tuple) and (
                    set(marker[1]) & roles or (marker[0] == "office" and "admin" in roles))):
                out |= {(m, route.path) for m in route.methods}
    return out


@pytest.mark.parametrize("role", ["admin", "office"])
def test_no_server_error_and_every_answer_as_documented(stack, role):
    world = _world(stack)
    headers = world[role]
    reachable = _reachable(stack.server.config.app, ROLES[role])
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    session = requests.Session()
    failures: list[str] = []
    operations = 0
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIPPED:
            continue
        operations += 1
        known = {p.name: world["known"][p.name] for p in operation.path_parameters if p.name in world["known"]}
        strategies = [operation.as_strategy()]
        if known:
            strategies.append(operation.as_strategy(path_parameters=known))
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=known))
        else:
            strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
        # Where this role is refused anyway, one request shows the refusal is as documented.
        examples = EXAMPLES * len(strategies) if key in reachable else 1

        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def run(case):
            response = case.call(base_url=stack.url, session=session, headers=headers, timeout=30)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except Exception as exc:  # noqa: BLE001 - every failure is collected, then reported at once
                failures.append(f"{operation.label} -> {response.status_code}: {exc}\n"  # noqa: B023 - run at once
                                f"  {case.as_curl_command(base_url=stack.url)}")

        run()
    elapsed = time.monotonic() - started
    session.close()
    assert operations > 40, "the OpenAPI document lost its operations"
    assert not failures, f"{len(failures)} failures in {elapsed:.0f} s:\n\n" + "\n\n".join(failures[:30])
