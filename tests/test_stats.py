"""Monthly statistics: the rollup from the source tables, and ``GET /v1/stats`` by caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import httpx
import pytest
import sqlalchemy as sa

from dossiers.db import utcnow
from dossiers.models import Dossier, StatsMonthly
from dossiers.scope import Scope
from dossiers.stats import add_months, month_start, rollup, summary
from tests.test_sharing import DOCS, World, make_world

SG_BYTES = len(b"%PDF SG search report")
MY_BYTES = sum(len(v) for v in DOCS.values())
ZERO = dict(deposits=0, documents=0, bytes=0, accesses=0, aspec_accepted=0, aspec_rejected=0, aspec_withdrawn=0)


def row(month: date, office: str, partner: str | None, **figures) -> dict:
    return {"month": month, "office": office, "partner": partner, **ZERO, **figures}


def as_json(rows: list[dict]) -> list[dict]:
    return [{**r, "month": r["month"].isoformat()} for r in rows]


@dataclass
class Activity:
    world: World
    month: date

    @property
    def stack(self):
        return self.world.stack

    def stats(self, headers: dict | None = None, **params) -> httpx.Response:
        return httpx.get(f"{self.stack.url}/v1/stats", headers=headers if headers is not None else self.world.admin,
                         params=params)

    def office(self, code: str) -> dict:
        return self.world.offices[code].headers


def aspec_request(w: World, docs=("sr-1", "er-1", "claims-1")) -> dict:
    r = w.post("SG", "/v1/aspec-requests", json={
        "route": "ASPEC", "application": {"office": "SG", "number": "10202301234X"},
        "first_office_application": {"office": "MY", "number": "PI2022001234"},
        "relied_documents": [{"dossier_id": w.my_dossier, "document_id": d} for d in docs]})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def activity(stack) -> Activity:
    """SG and MY deposit; SG reads MY's dossier twice (TH is refused, MY reads its own); SG
    files two ASPEC requests on MY's results, both rejected, and withdraws one."""
    w = make_world(stack)
    assert w.get("SG", f"/v1/dossiers/{w.my_dossier}").status_code == 200
    assert w.get("SG", f"/v1/dossiers/{w.my_dossier}/documents/sr-1").status_code == 200
    assert w.get("TH", f"/v1/dossiers/{w.my_dossier}").status_code == 404
    assert w.get("MY", f"/v1/dossiers/{w.my_dossier}").status_code == 200
    first = aspec_request(w)
    assert first["status"] == "rejected" and first["reasons"] == ["NO_ALLOWABLE_CLAIM"]
    second = aspec_request(w)
    r = w.post("SG", f"/v1/aspec-requests/{second['id']}/withdraw")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"
    with stack.session_factory() as s:
        received = s.get(Dossier, w.my_dossier).received_at
    return Activity(w, month_start(received))


def expected(m: date) -> list[dict]:
    return [
        row(m, "MY", None, deposits=1, documents=3, bytes=MY_BYTES),
        row(m, "MY", "SG", accesses=2),
        row(m, "SG", None, deposits=1, documents=1, bytes=SG_BYTES),
        row(m, "SG", "MY", aspec_rejected=1, aspec_withdrawn=1),
    ]


def test_rollup_counts_deposits_partner_reads_and_aspec_outcomes(activity):
    stack, m = activity.stack, activity.month
    assert rollup(stack.session_factory) == 4
    with stack.session_factory() as s:
        assert summary(s, scope=Scope.everything(), since=None) == expected(m)
        assert summary(s, scope=Scope.office("MY"), since=None) == [
            x for x in expected(m) if "MY" in (x["office"], x["partner"])]
        assert summary(s, scope=Scope.office("TH"), since=None) == []
        assert summary(s, scope=Scope.everything(), since=add_months(m, 1)) == []


def test_rollup_twice_gives_the_same_rows_and_replaces_stale_ones(activity):
    stack, m = activity.stack, activity.month
    old = add_months(m, -24)
    with stack.session_factory.begin() as s:
        s.add(StatsMonthly(month=m, office_code="ZZ", partner_code="", deposits=99))  # stale, in the window
        s.add(StatsMonthly(month=old, office_code="ZZ", partner_code="", deposits=7))  # outside it: kept
    assert rollup(stack.session_factory) == 4
    with stack.session_factory() as s:
        first = summary(s, scope=Scope.everything(), since=None)
    assert rollup(stack.session_factory) == 4
    with stack.session_factory() as s:
        assert summary(s, scope=Scope.everything(), since=None) == first
        assert first == [row(old, "ZZ", None, deposits=7), *expected(m)]


def test_rows_fall_in_the_month_of_their_event(activity):
    stack, m = activity.stack, activity.month
    earlier = add_months(m, -1)
    with stack.session_factory.begin() as s:
        s.execute(sa.update(Dossier).where(Dossier.id == activity.world.my_dossier)
                  .values(received_at=utcnow().replace(year=earlier.year, month=earlier.month, day=15)))
    assert rollup(stack.session_factory) == 4
    with stack.session_factory() as s:
        rows = summary(s, scope=Scope.office("MY"), since=None)
    assert rows[0] == row(earlier, "MY", None, deposits=1, documents=3, bytes=MY_BYTES)
    assert [(r["month"], r["office"], r["partner"]) for r in rows[1:]] == [
        (m, "MY", "SG"), (m, "SG", "MY")]
    # One month's window recomputes this month only: last month's row stays as computed.
    assert rollup(stack.session_factory, months=1) == 3
    with stack.session_factory() as s:
        assert summary(s, scope=Scope.office("MY"), since=None)[0]["month"] == earlier
        assert summary(s, scope=Scope.office("MY"), since=m)[0]["month"] == m


def test_admin_reads_every_row_with_totals(activity):
    rollup(activity.stack.session_factory)
    r = activity.stats()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["months"] == as_json(expected(activity.month))
    assert body["totals"] == {**ZERO, "deposits": 2, "documents": 4, "bytes": MY_BYTES + SG_BYTES, "accesses": 2,
                              "aspec_rejected": 1, "aspec_withdrawn": 1}
    only_sg = activity.stats(office="SG").json()["months"]
    assert [(x["office"], x["partner"]) for x in only_sg] == [("MY", "SG"), ("SG", None), ("SG", "MY")]
    month = activity.month.isoformat()[:7]
    assert activity.stats(since=month).json()["months"] == body["months"]
    assert activity.stats(since=f"{month}-28").json()["months"] == body["months"]  # a date counts from its month
    assert activity.stats(since=add_months(activity.month, 1).isoformat()[:7]).json()["months"] == []


def test_office_admin_reads_only_rows_of_its_own_office(activity):
    rollup(activity.stack.session_factory)
    m = activity.month
    r = activity.stats(activity.office("SG"))
    assert r.status_code == 200, r.text
    assert r.json()["months"] == as_json([x for x in expected(m) if "SG" in (x["office"], x["partner"])])
    assert r.json()["totals"]["deposits"] == 1  # SG's own; MY's deposits are not SG's to see
    assert activity.stats(activity.office("SG"), office="SG").json() == r.json()
    assert activity.stats(activity.office("JP")).json()["months"] == []


def test_access_is_denied_to_other_offices_and_anonymous_callers(activity):
    rollup(activity.stack.session_factory)
    other = activity.stats(activity.office("SG"), office="MY")
    assert other.status_code == 404 and other.json()["code"] == "not-found"  # as an unknown office
    assert activity.stats({}).status_code == 401
    kit = activity.world.offices["SG"]
    r = httpx.post(f"{activity.stack.url}/v1/offices/SG/clients", headers=activity.world.admin,
                   json={"roles": ["examiner"]})
    from tests.support import token

    examiner = {"Authorization": f"Bearer {token(kit.base_url, r.json()['client_id'], r.json()['client_secret'])}"}
    assert activity.stats(examiner).status_code == 403
    bad = activity.stats(since="last year")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid-request"


def test_rollup_of_an_empty_exchange_writes_nothing(stack):
    assert rollup(stack.session_factory, months=13, now=utcnow() + timedelta(days=400)) == 0
    with pytest.raises(ValueError):
        rollup(stack.session_factory, months=0)
    assert stack.count("stats_monthly") == 0
