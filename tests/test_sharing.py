"""Partners reading each other's results under agreements: the access rule end to end."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from tests.support import OfficeKit, deposit, manifest, sign

DOCS = {"sr-1": b"%PDF search report", "er-1": b"%PDF examination report", "claims-1": b"%PDF claims"}
TYPES = {"sr-1": "SR", "er-1": "ER", "claims-1": "CLAIMS"}


@dataclass
class World:
    stack: object
    admin: dict
    offices: dict[str, OfficeKit]
    agreement: dict
    my_dossier: str

    def get(self, office: str, path: str, **kw) -> httpx.Response:
        return httpx.get(f"{self.stack.url}{path}", headers=self.offices[office].headers, **kw)

    def post(self, who, path: str, **kw) -> httpx.Response:
        headers = self.admin if who == "admin" else self.offices[who].headers
        return httpx.post(f"{self.stack.url}{path}", headers=headers, **kw)


def app_manifest(office: str, number: str, docs=DOCS, priorities=(), pct=None, published=True, citations=None):
    m = manifest(office, docs, number=number, types=TYPES)
    m["application"]["priorities"] = [{"office": o, "number": n, "date": "2022-03-02"} for o, n in priorities]
    m["application"]["pct"] = pct
    if not published:
        m["application"]["publication"] = None
    if citations is not None:
        m["citations"] = citations
    return m


def make_world(stack, *, agreement_extra=None, my_published=True) -> World:
    admin = stack.admin()
    offices = {c: stack.office(c, admin=admin) for c in ("SG", "MY", "TH", "JP")}
    body = {"name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY", "TH", "VN"] if False else ["SG", "MY", "TH"],
            "document_types": ["SR", "WO", "ER", "CLAIMS"], "valid_from": "2020-01-01T00:00:00Z",
            **(agreement_extra or {})}
    r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json=body)
    assert r.status_code == 201, r.text
    my = offices["MY"]
    r = deposit(my, sign(app_manifest("MY", "PI2022001234", published=my_published, citations=[
        {"cited": "US2019123456A1", "category": "X", "claims": [1, 2]},
        {"cited": "EP3456789A1", "category": "A", "claims": [3]}]), my.key), DOCS)
    assert r.status_code == 201, r.text
    sg = offices["SG"]
    sg_docs = {"sr-1": b"%PDF SG search report"}
    r = deposit(sg, sign(app_manifest("SG", "10202301234X", docs=sg_docs, priorities=[("MY", "PI 2022/001234")],
                                      citations=[{"cited": "US 2019/123456 A1", "category": "Y", "claims": [1]}]),
                         sg.key), sg_docs)
    assert r.status_code == 201, r.text
    return World(stack, admin, offices, r.json() and httpx.get(f"{stack.url}/v1/agreements", headers=admin).json()[0],
                 _my_dossier(stack, my))


def _my_dossier(stack, my) -> str:
    return httpx.get(f"{stack.url}/v1/dossiers", headers=my.headers).json()["items"][0]["dossier_id"]


@pytest.fixture
def world(stack) -> World:
    return make_world(stack)


def test_partner_with_a_corresponding_application_reads_the_dossier(world):
    r = world.get("SG", f"/v1/dossiers/{world.my_dossier}")
    assert r.status_code == 200, r.text
    assert [d["id"] for d in r.json()["documents"]] == ["sr-1", "er-1", "claims-1"]
    doc = world.get("SG", f"/v1/dossiers/{world.my_dossier}/documents/er-1")
    assert doc.status_code == 200 and doc.content == DOCS["er-1"]
    assert world.get("SG", f"/v1/dossiers/{world.my_dossier}/signature").status_code == 200


def test_not_visible_is_exactly_like_not_existing(world):
    hidden = world.get("TH", f"/v1/dossiers/{world.my_dossier}")  # TH holds no corresponding application
    missing = world.get("TH", "/v1/dossiers/00000000-0000-0000-0000-000000000000")
    assert hidden.status_code == missing.status_code == 404
    strip = lambda b: {k: v for k, v in b.items() if k not in ("request_id", "instance", "detail")}  # noqa: E731
    assert strip(hidden.json()) == strip(missing.json())
    assert hidden.json()["detail"].replace(world.my_dossier, "X") == missing.json()["detail"].replace(
        "00000000-0000-0000-0000-000000000000", "X")
    assert world.get("JP", f"/v1/dossiers/{world.my_dossier}/documents/sr-1").status_code == 404
    assert world.get("JP", f"/v1/dossiers/{world.my_dossier}/signature").status_code == 404


def test_registering_a_corresponding_application_opens_access(world):
    assert world.get("TH", f"/v1/dossiers/{world.my_dossier}").status_code == 404
    r = world.post("TH", "/v1/applications", json={
        "number": "2301001234", "filing_date": "2023-03-01", "title": "Widget",
        "priorities": [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"}]})
    assert r.status_code == 201, r.text
    assert world.get("TH", f"/v1/dossiers/{world.my_dossier}").status_code == 200


def test_suspend_resume_terminate_take_effect_on_the_next_request(world):
    aid = world.agreement["id"]
    path = f"/v1/dossiers/{world.my_dossier}/documents/sr-1"
    assert world.get("SG", path).status_code == 200
    assert world.post("admin", f"/v1/agreements/{aid}/suspend").json()["status"] == "suspended"
    assert world.get("SG", path).status_code == 404  # the same token, the very next request
    assert world.post("admin", f"/v1/agreements/{aid}/resume").json()["status"] == "active"
    assert world.get("SG", path).status_code == 200
    assert world.post("admin", f"/v1/agreements/{aid}/terminate").json()["status"] == "terminated"
    assert world.get("SG", path).status_code == 404
    r = world.post("admin", f"/v1/agreements/{aid}/resume")
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert world.stack.count("outbox_event") >= 4  # deposits + created + suspended + resumed + terminated
    with world.stack.engine.connect() as c:
        import sqlalchemy as sa
        topics = [t for (t,) in c.execute(sa.text("SELECT topic FROM outbox_event ORDER BY created_at"))]
    assert topics.count("agreement.changed") == 4


def test_document_types_outside_the_agreement_are_hidden(stack):
    w = make_world(stack, agreement_extra={"document_types": ["SR", "CLAIMS"]})
    r = w.get("SG", f"/v1/dossiers/{w.my_dossier}")
    assert [d["id"] for d in r.json()["documents"]] == ["sr-1", "claims-1"]
    assert w.get("SG", f"/v1/dossiers/{w.my_dossier}/documents/er-1").status_code == 404
    fam = w.get("SG", "/v1/applications/SG/10202301234X/family").json()
    my = next(m for m in fam["members"] if m["office"] == "MY")
    assert my["dossiers"][0]["document_types"] == ["CLAIMS", "SR"]


def test_unpublished_applications_are_shared_only_when_the_agreement_says_so(stack):
    w = make_world(stack, my_published=False)
    assert w.get("SG", f"/v1/dossiers/{w.my_dossier}").status_code == 404
    fam = w.get("SG", "/v1/applications/SG/10202301234X/family").json()
    assert [m["office"] for m in fam["members"]] == ["SG"]  # MY's unpublished application is not disclosed
    r = w.post("admin", "/v1/agreements", json={
        "name": "bilateral", "program": "BILATERAL", "members": ["SG", "MY"], "document_types": ["SR"],
        "valid_from": "2020-01-01T00:00:00Z", "share_unpublished": True})
    assert r.status_code == 201
    d = w.get("SG", f"/v1/dossiers/{w.my_dossier}").json()
    assert [x["id"] for x in d["documents"]] == ["sr-1"]


def test_family_and_citations(world):
    fam = world.get("SG", "/v1/applications/SG/10202301234X/family")
    assert fam.status_code == 200, fam.text
    body = fam.json()
    assert body["offices"] == ["MY", "SG"]
    my = next(m for m in body["members"] if m["office"] == "MY")
    assert my["number"] == "PI2022001234" and my["filing_date"] == "2023-03-01"
    assert my["dossiers"][0]["dossier_id"] == world.my_dossier
    assert my["dossiers"][0]["document_types"] == ["CLAIMS", "ER", "SR"]
    cites = world.get("SG", "/v1/applications/SG/10202301234X/citations").json()["citations"]
    top = cites[0]
    assert top["offices"] == ["MY", "SG"] and top["categories"] == ["X", "Y"]
    assert {c["cited"] for c in cites} == {"US2019123456A1", "EP3456789A1"}
    # JP has no agreement: its view of the family shows nothing of MY's dossier.
    world.post("JP", "/v1/applications", json={"number": "2022-123456", "filing_date": "2022-08-01", "title": "x",
                                               "priorities": [{"office": "MY", "number": "PI2022001234",
                                                               "date": "2022-03-02"}]})
    jp = world.get("JP", "/v1/applications/JP/2022-123456/family").json()
    assert all(not m["dossiers"] for m in jp["members"] if m["office"] != "JP")
    assert world.get("JP", "/v1/applications/JP/2022-123456/citations").json()["citations"] == []


def test_every_decision_is_audited_and_explained(world):
    world.get("SG", f"/v1/dossiers/{world.my_dossier}")
    world.get("TH", f"/v1/dossiers/{world.my_dossier}")
    items = httpx.get(f"{world.stack.url}/v1/audit", params={"action": "access.decision"},
                      headers=world.admin).json()["items"]
    by_office = {(e["office"], e["outcome"]) for e in items if e["subject"] == world.my_dossier}
    assert ("SG", "granted") in by_office and ("TH", "denied") in by_office
    denied = next(e for e in items if e["office"] == "TH")
    assert "corresponding application" in denied["reason"]
    r = httpx.get(f"{world.stack.url}/v1/access/explain", params={"dossier_id": world.my_dossier, "office": "SG"},
                  headers=world.admin)
    assert r.status_code == 200 and r.json()["decision"] == "granted"
    assert r.json()["rule"] == f"agreement:{world.agreement['id']}"
    r = httpx.get(f"{world.stack.url}/v1/access/explain", params={"dossier_id": world.my_dossier, "office": "JP"},
                  headers=world.admin)
    assert r.json()["decision"] == "denied" and "no agreement" in r.json()["reason"]
    assert world.get("SG", f"/v1/access/explain?dossier_id={world.my_dossier}&office=SG").status_code == 403


@pytest.mark.parametrize("change, pointer", [
    ({"members": ["SG", "XX"]}, "/members"),
    ({"members": ["SG"]}, "/members"),
    ({"document_types": ["SR", "MEMO"]}, "/document_types"),
    ({"valid_until": "2019-01-01T00:00:00Z"}, "/valid_until"),
    ({"program": "OTHER"}, "/program"),
])
def test_bad_agreements_change_nothing(stack, change, pointer):
    admin = stack.admin()
    stack.office("SG", admin=admin)
    body = {"name": "x", "program": "ASPEC", "members": ["SG", "MY"], "document_types": ["SR"],
            "valid_from": "2020-01-01T00:00:00Z", **change}
    with httpx.Client(base_url=stack.url, headers=admin) as http:
        http.post("/v1/offices", json={"code": "MY", "name": "MY"})
        r = http.post("/v1/agreements", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(e["pointer"].startswith(pointer) for e in r.json()["errors"]), r.json()
    assert stack.count("agreement") == 0 and stack.count("outbox_event") == 0


def test_agreements_are_visible_to_members_only(world):
    aid = world.agreement["id"]
    assert world.get("SG", f"/v1/agreements/{aid}").status_code == 200
    assert world.get("JP", f"/v1/agreements/{aid}").status_code == 404
    assert world.get("JP", "/v1/agreements").json() == []
    assert [a["id"] for a in world.get("MY", "/v1/agreements").json()] == [aid]
    assert world.post("SG", f"/v1/agreements/{aid}/suspend").status_code == 403


def test_applications_are_registered_for_the_callers_own_office_only(world):
    body = {"number": "PI2023009999", "filing_date": "2023-01-01", "title": "t"}
    r = world.post("SG", "/v1/applications", json={**body, "office": "MY"})
    assert r.status_code == 403 and r.json()["code"] == "not-own-application"
    r1 = world.post("MY", "/v1/applications", json=body)
    r2 = world.post("MY", "/v1/applications", json={**body, "title": "changed"})
    assert (r1.status_code, r2.status_code) == (201, 200) and r2.json()["title"] == "changed"


@pytest.mark.parametrize("spelling", ["PI2022001234", "pi 2022 001234", "PI2022/001234", "MY-PI2022001234"])
def test_look_up_by_any_spelling_and_by_priority(world, spelling):
    r = world.get("SG", "/v1/applications", params={"number": spelling})
    assert r.status_code == 200
    found = {(a["office"], a["number"]) for a in r.json()}
    # MY's own application, and SG's, which claims it as priority.
    assert ("MY", "PI2022001234") in found and ("SG", "10202301234X") in found


def test_office_settings(world):
    r = httpx.patch(f"{world.stack.url}/v1/offices/SG", headers=world.admin,
                    json={"settings": {"aspec.requires_cct": True}})
    assert r.status_code == 200 and r.json()["settings"] == {"aspec": {"requires_cct": True}}
    r = httpx.patch(f"{world.stack.url}/v1/offices/SG", headers=world.admin,
                    json={"settings": {"aspec": {"requires_cct": "yes"}}})
    assert r.status_code == 422
    r = httpx.patch(f"{world.stack.url}/v1/offices/SG", headers=world.offices["SG"].headers,
                    json={"settings": {"aspec.requires_cct": False}})
    assert r.status_code == 403
