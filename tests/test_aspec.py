"""ASPEC requests: every reason code, office settings, the written-opinion cut-over, and the
access an accepted request opens (and withdrawal closes)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import deposit, manifest, sign


def fo_dossier(kit, number="PI2022001234", docs=None, published=False, office=None, priorities=(), pct=None):
    """A first-office dossier; ``docs`` maps id -> (type, extra fields)."""
    docs = docs or {"sr-1": ("SR", {}), "er-1": ("ER", {"allowable_claims": [1, 2]}), "claims-1": ("CLAIMS", {})}
    files = {i: f"%PDF {i} of {number}".encode() for i in docs}
    m = manifest(office or kit.code, files, number=number, types={i: t for i, (t, _) in docs.items()})
    for d in m["documents"]:
        d.update(docs[d["id"]][1])
    m["application"]["priorities"] = [{"office": o, "number": n, "date": "2022-01-01"} for o, n in priorities]
    m["application"]["pct"] = pct
    if not published:
        m["application"]["publication"] = None
    r = deposit(kit, sign(m, kit.key), files)
    assert r.status_code == 201, r.text
    return r.json()["dossier_id"]


class Aspec:
    def __init__(self, stack):
        self.stack = stack
        self.admin = stack.admin()
        self.k = {c: stack.office(c, admin=self.admin) for c in ("SG", "MY", "TH", "US")}
        r = httpx.post(f"{stack.url}/v1/agreements", headers=self.admin, json={
            "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY", "TH"],
            "document_types": ["SR", "WO", "ER", "CLAIMS", "CCT", "ISR", "WOISA", "IPRP"],
            "valid_from": "2020-01-01T00:00:00Z"})
        assert r.status_code == 201
        self.dossier = fo_dossier(self.k["MY"])
        for so in ("SG", "TH"):
            self.register(so, {"SG": "10202301234X", "TH": "2301001234"}[so], priorities=[("MY", "PI2022001234")])

    def register(self, office, number, priorities=(), pct=None):
        r = httpx.post(f"{self.stack.url}/v1/applications", headers=self.k[office].headers, json={
            "number": number, "filing_date": "2023-03-01", "title": "t", "pct": pct,
            "priorities": [{"office": o, "number": n, "date": "2022-03-02"} for o, n in priorities]})
        assert r.status_code in (200, 201), r.text

    def request(self, so="SG", number=None, fo="MY", fo_number="PI2022001234", docs=("sr-1", "er-1", "claims-1"),
                dossier=None, route="ASPEC", **extra) -> httpx.Response:
        number = number or {"SG": "10202301234X", "TH": "2301001234"}.get(so)
        body = {"route": route, "application": {"office": so, "number": number},
                "first_office_application": {"office": fo, "number": fo_number},
                "relied_documents": [{"dossier_id": dossier or self.dossier, "document_id": d} for d in docs], **extra}
        return httpx.post(f"{self.stack.url}/v1/aspec-requests", headers=self.k[so].headers, json=body)


@pytest.fixture
def w(stack) -> Aspec:
    return Aspec(stack)


def reasons(r: httpx.Response) -> list[str]:
    assert r.status_code == 201, r.text
    return r.json()["reasons"]


def test_accepted_request_opens_the_unpublished_dossier_until_withdrawn(w):
    url = f"{w.stack.url}/v1/dossiers/{w.dossier}"
    assert httpx.get(url, headers=w.k["SG"].headers).status_code == 404  # unpublished: the agreement alone won't do
    r = w.request()
    assert r.json()["status"] == "accepted" and r.json()["reasons"] == [] and r.json()["basis"] == "priority"
    rid = r.json()["id"]
    got = httpx.get(url, headers=w.k["SG"].headers)
    assert got.status_code == 200 and {d["id"] for d in got.json()["documents"]} == {"sr-1", "er-1", "claims-1"}
    assert httpx.get(url, headers=w.k["TH"].headers).status_code == 404  # TH filed nothing
    # Both offices (and the admin) read the request; others do not know it exists.
    for office in ("SG", "MY"):
        assert httpx.get(f"{w.stack.url}/v1/aspec-requests/{rid}", headers=w.k[office].headers).status_code == 200
    assert httpx.get(f"{w.stack.url}/v1/aspec-requests/{rid}", headers=w.k["TH"].headers).status_code == 404
    assert [x["id"] for x in httpx.get(f"{w.stack.url}/v1/aspec-requests", headers=w.k["MY"].headers).json()] == [rid]
    # Only the SO withdraws; then the access ends.
    assert httpx.post(f"{w.stack.url}/v1/aspec-requests/{rid}/withdraw", headers=w.k["MY"].headers).status_code == 403
    r = httpx.post(f"{w.stack.url}/v1/aspec-requests/{rid}/withdraw", headers=w.k["SG"].headers)
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    assert httpx.get(url, headers=w.k["SG"].headers).status_code == 404


def test_not_participant(w):
    us = fo_dossier(w.k["US"], number="17/123,456", published=True)
    w.register("SG", "10202309999A", priorities=[("US", "17/123,456")])
    assert reasons(w.request(number="10202309999A", fo="US", fo_number="17/123,456", dossier=us)) == ["NOT_PARTICIPANT"]
    assert "NOT_PARTICIPANT" in reasons(w.request(so="MY", number="PI2022001234"))  # SO = FO


def test_not_corresponding(w):
    w.register("SG", "10202307777B")
    # MY's dossier is unpublished: SG cannot see it, and relying on it for an application that does
    # not correspond reads as if it did not exist (tests/test_nothing_revealed.py compares them).
    r = w.request(number="10202307777B")
    assert r.status_code == 422 and r.json()["code"] == "relied-document-unknown"
    # Once published, SG sees it (its 10202301234X corresponds): the request is decided and says why.
    published = fo_dossier(w.k["MY"], published=True)
    assert reasons(w.request(number="10202307777B", dossier=published)) == ["NOT_CORRESPONDING"]


@pytest.mark.parametrize("so_priorities, fo_priorities, so_pct, fo_pct, basis", [
    ([("JP", "2022-123456")], [("JP", "2022-123456")], None, None, "common_priority"),
    ([], [], "PCT/MY2022/050001", "PCT/MY2022/050001", "pct"),
])
def test_other_bases_of_correspondence(stack, so_priorities, fo_priorities, so_pct, fo_pct, basis):
    w = Aspec(stack)
    d = fo_dossier(w.k["MY"], number="PI2022005555", priorities=fo_priorities, pct=fo_pct)
    w.register("SG", "10202305555C", priorities=so_priorities, pct=so_pct)
    r = w.request(number="10202305555C", fo_number="PI2022005555", dossier=d)
    assert r.json()["reasons"] == [] and r.json()["basis"] == basis


def test_missing_minimum_documents_and_claims(w):
    assert reasons(w.request(docs=("sr-1", "claims-1"))) == ["MISSING_MIN_DOCS"]
    assert reasons(w.request(docs=("sr-1", "er-1"))) == ["MISSING_CLAIMS"]


def test_written_opinion_stands_in_from_2021_06_15_except_where_refused(w):
    d = fo_dossier(w.k["MY"], number="PI2022001234", docs={
        "wo-1": ("WO", {"allowable_claims": [1]}), "claims-1": ("CLAIMS", {})})
    assert reasons(w.request(docs=("wo-1", "claims-1"), dossier=d, requested_on="2023-01-01")) == []
    assert reasons(w.request(docs=("wo-1", "claims-1"), dossier=d, requested_on="2021-06-14")) == ["MISSING_MIN_DOCS"]
    # Thailand's settings refuse written opinions, until an administrator changes them.
    assert reasons(w.request(so="TH", docs=("wo-1", "claims-1"), dossier=d)) == ["MISSING_MIN_DOCS"]
    r = httpx.patch(f"{w.stack.url}/v1/offices/TH", headers=w.admin,
                    json={"settings": {"aspec.accepts_written_opinion": True}})
    assert r.status_code == 200
    assert reasons(w.request(so="TH", docs=("wo-1", "claims-1"), dossier=d)) == []


def test_no_allowable_claim(w):
    d = fo_dossier(w.k["MY"], docs={"sr-1": ("SR", {}), "er-1": ("ER", {"allowable_claims": []}),
                                    "claims-1": ("CLAIMS", {})})
    assert reasons(w.request(dossier=d)) == ["NO_ALLOWABLE_CLAIM"]


def test_pct_aspec_needs_an_asean_authority(w):
    us = fo_dossier(w.k["US"], number="17/555,555", docs={
        "isr-1": ("ISR", {}), "iprp-1": ("IPRP", {"allowable_claims": [1]}), "claims-1": ("CLAIMS", {})})
    w.register("SG", "10202304444D", priorities=[("US", "17/555,555")])
    got = reasons(w.request(route="PCT-ASPEC", number="10202304444D", fo="US", fo_number="17/555,555", dossier=us,
                            docs=("isr-1", "iprp-1", "claims-1")))
    assert got == ["NOT_PARTICIPANT", "ISA_NOT_ASEAN"]
    my = fo_dossier(w.k["MY"], docs={"isr-1": ("ISR", {}), "iprp-1": ("IPRP", {"allowable_claims": [1]}),
                                     "claims-1": ("CLAIMS", {})})
    assert reasons(w.request(route="PCT-ASPEC", dossier=my, docs=("isr-1", "iprp-1", "claims-1"))) == []


def test_claim_correspondence_where_the_office_requires_it(w):
    httpx.patch(f"{w.stack.url}/v1/offices/SG", headers=w.admin, json={"settings": {"aspec": {"requires_cct": True}}})
    assert reasons(w.request()) == ["MISSING_CCT"]
    cct = [{"claim": 1, "first_office_claim": 1, "relation": "same"}]
    assert reasons(w.request(claim_correspondence=cct)) == []


def test_not_english_unless_translated(w):
    d = fo_dossier(w.k["MY"], docs={"sr-1": ("SR", {"language": "ms"}), "er-1": ("ER", {"allowable_claims": [1]}),
                                    "claims-1": ("CLAIMS", {})})
    assert reasons(w.request(dossier=d)) == ["NOT_ENGLISH"]
    d2 = fo_dossier(w.k["MY"], docs={"sr-1": ("SR", {"language": "ms"}), "sr-1-en": ("SR", {"translation_of": "sr-1"}),
                                     "er-1": ("ER", {"allowable_claims": [1]}), "claims-1": ("CLAIMS", {})})
    assert reasons(w.request(dossier=d2)) == []


def test_too_late_once_the_second_office_has_decided(w):
    fo_dossier(w.k["SG"], number="10202301234X", docs={"grant-1": ("GRANT", {})}, priorities=[("MY", "PI2022001234")])
    assert reasons(w.request()) == ["TOO_LATE"]


def test_every_reason_that_applies_is_given(w):
    w.register("SG", "10202301111Z")
    d = fo_dossier(w.k["MY"], docs={"sr-1": ("SR", {"language": "ms"})}, published=True)  # SG sees it
    assert reasons(w.request(number="10202301111Z", dossier=d, docs=("sr-1",))) == [
        "NOT_CORRESPONDING", "MISSING_MIN_DOCS", "MISSING_CLAIMS", "NOT_ENGLISH"]


def test_bad_requests_change_nothing(w):
    before = w.stack.count("aspec_request")
    r = w.request(docs=("sr-1", "nope"))
    assert r.status_code == 422 and r.json()["code"] == "relied-document-unknown"
    r = w.request(dossier="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 422 and r.json()["code"] == "relied-document-unknown"
    other = fo_dossier(w.k["TH"], number="2301005555")  # exists, but is not the first office's
    r = w.request(dossier=other, docs=("sr-1",))
    assert r.status_code == 422 and r.json()["code"] == "relied-document-unknown"
    body = {"route": "ASPEC", "application": {"office": "MY", "number": "PI2022001234"},
            "first_office_application": {"office": "MY", "number": "PI2022001234"},
            "relied_documents": [{"dossier_id": w.dossier, "document_id": "sr-1"}]}
    r = httpx.post(f"{w.stack.url}/v1/aspec-requests", headers=w.k["SG"].headers, json=body)
    assert r.status_code == 403 and r.json()["code"] == "not-own-application"
    r = w.request(number="10209999999X")
    assert r.status_code == 404
    r = w.request(route="FAST")
    assert r.status_code == 422
    assert w.stack.count("aspec_request") == before
