"""A family view takes and audits each dossier's access decision once (issue 10, item 1): the
API's family and citation routes and the examiner's application page read the family through
one service (dossiers/families.py) with one access gate, so a view of a family with two visible
dossiers writes two ``access.decision`` entries, not four."""

from __future__ import annotations

import re
from collections import Counter

import httpx
import sqlalchemy as sa

from dossiers import users
from dossiers.models import AuditEntry
from tests.test_sharing import make_world

PASSWORD = "correct horse battery staple"


def _last_seq(stack) -> int:
    with stack.session_factory() as s:
        return s.scalar(sa.select(sa.func.coalesce(sa.func.max(AuditEntry.seq), 0)))


def _decisions_since(stack, seq: int) -> list[AuditEntry]:
    with stack.session_factory() as s:
        return list(s.scalars(sa.select(AuditEntry).where(AuditEntry.seq > seq,
                                                          AuditEntry.action == "access.decision")))


def _dossier_ids(world) -> dict[str, str]:
    ids = {"MY": world.my_dossier}
    ids["SG"] = httpx.get(f"{world.stack.url}/v1/dossiers", headers=world.offices["SG"].headers).json()[
        "items"][0]["dossier_id"]
    return ids


def _assert_once_each(entries: list[AuditEntry], ids: dict[str, str]) -> None:
    assert Counter(e.subject for e in entries) == Counter({ids["SG"]: 1, ids["MY"]: 1}), [
        (e.subject, e.outcome, e.reason) for e in entries]
    assert {e.outcome for e in entries} == {"granted"}
    assert {e.office_code for e in entries} == {"SG"}
    assert sorted(e.detail["rule"].split(":")[0] for e in entries) == ["agreement", "own-office"]


def test_an_api_family_and_citation_call_audit_each_dossier_once(stack):
    world = make_world(stack)
    ids = _dossier_ids(world)

    before = _last_seq(stack)
    r = world.get("SG", "/v1/applications/SG/10202301234X/family")
    assert r.status_code == 200, r.text
    assert sorted(d["dossier_id"] for m in r.json()["members"] for d in m["dossiers"]) == sorted(ids.values())
    _assert_once_each(_decisions_since(stack, before), ids)

    before = _last_seq(stack)
    r = world.get("SG", "/v1/applications/SG/10202301234X/citations")
    assert r.status_code == 200, r.text
    assert {c["cited"] for c in r.json()["citations"]} == {"US2019123456A1", "EP3456789A1"}
    _assert_once_each(_decisions_since(stack, before), ids)

    # Looked up by the partner's number: the searched application is the other one, same count.
    before = _last_seq(stack)
    assert world.get("SG", "/v1/applications/MY/PI2022001234/family").status_code == 200
    _assert_once_each(_decisions_since(stack, before), ids)


def _sign_in(client: httpx.Client, username: str) -> None:
    form = client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    r = client.post("/signin", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 303, r.text


def test_the_examiners_family_page_audits_each_dossier_once(stack):
    world = make_world(stack)
    ids = _dossier_ids(world)
    with stack.session_factory.begin() as s:
        users.create_user(s, username="examiner@sg.test", display_name="Examiner", office="SG", roles=["examiner"],
                          password=PASSWORD, email=None, actor="test")
    with httpx.Client(base_url=stack.url) as client:
        _sign_in(client, "examiner@sg.test")
        before = _last_seq(stack)
        r = client.get("/applications/SG/10202301234X")
        assert r.status_code == 200, r.text
        assert ids["MY"] in r.text and ids["SG"] in r.text  # both dossiers are shown
        _assert_once_each(_decisions_since(stack, before), ids)
