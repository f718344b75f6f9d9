"""``exchange demo``: the seed against the embedded default (SQLite and a local directory) served
on loopback, with the outcomes it promises; a second start and an interrupted seed; and the real
command in a subprocess, from an interrupted first start to a banner, a sign-in and a reuse."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import click
import httpx
import pytest
import sqlalchemy as sa

import migrations
from dossiers import registry
from dossiers.db import make_engine, make_session_factory
from exchange.app import create_app
from exchange.demo import seeder as demo
from exchange.demo import sink as demo_sink
from exchange.demo.data import AGREEMENTS, ASEAN, OFFICES, REQUESTS, members
from exchange.settings import Settings
from tests.support import ServerThread, token

REASONS = {"NOT_PARTICIPANT", "NOT_CORRESPONDING", "MISSING_MIN_DOCS", "NO_ALLOWABLE_CLAIM", "ISA_NOT_ASEAN",
           "MISSING_CLAIMS", "MISSING_CCT", "NOT_ENGLISH", "TOO_LATE"}


def embedded(home: Path) -> Settings:
    return Settings.from_env({"EXCHANGE_HOME": str(home), "EXCHANGE_WEBHOOK_ALLOW_HOSTS": "127.0.0.1/32"})


def count(settings: Settings, table: str) -> int:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()
    finally:
        engine.dispose()


@dataclass
class Seeded:
    settings: Settings
    url: str
    creds: dict

    def client(self, office: str, roles: tuple[str, ...] | None = None) -> httpx.Client:
        """The office system's client, or a new client of the office with only ``roles``."""
        o = self.creds["offices"][office]
        client_id, secret = o["client_id"], o["client_secret"]
        if roles is not None:
            with self.client(office) as http:
                c = http.post(f"/v1/offices/{office}/clients", json={"roles": list(roles)}).json()
            client_id, secret = c["client_id"], c["client_secret"]
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token(self.url, client_id, secret)}"})

    def admin(self) -> httpx.Client:
        a = self.creds["admin"]
        return httpx.Client(base_url=self.url, timeout=30,
                            headers={"Authorization": f"Bearer {token(self.url, a['client_id'], a['client_secret'])}"})


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    settings = embedded(tmp_path_factory.mktemp("demo-home"))
    migrations.upgrade(settings.database_url)
    server = ServerThread(create_app(settings, extra_routers=(demo_sink.router,))).start()
    try:
        yield Seeded(settings, server.url, demo.seed(server.url, settings))
    finally:
        server.stop()


def test_the_seed_holds_offices_agreements_applications_and_dossiers(seeded):
    with seeded.admin() as http:
        offices = http.get("/v1/offices").json()
        agreements = {a["program"]: a for a in http.get("/v1/agreements").json()}
        settings = {o["code"]: o["settings"] for o in offices}
    assert sorted(o["code"] for o in offices) == sorted(OFFICES) and len(offices) == 14
    assert sorted(agreements) == ["ASPEC", "CASE"] and len(AGREEMENTS) == 2
    assert sorted(agreements["ASPEC"]["members"]) == sorted(ASEAN)
    assert {"JP", "US", "EP", "AU", "KR"} <= set(agreements["CASE"]["members"])
    assert settings["TH"]["aspec"]["accepts_written_opinion"] is False and settings["ID"]["aspec"]["requires_cct"]

    deposited = sum(len(m.deposits) for _, m in members())
    assert 30 <= len(members()) <= 45 and count(seeded.settings, "application") == len(members())
    assert count(seeded.settings, "dossier") == deposited == seeded.creds["counts"]["dossiers"]
    assert seeded.creds["counts"] == {"applications": len(members()), "dossiers": deposited,
                                      "aspec_requests": len(REQUESTS)}
    assert any(not m.deposits for _, m in members()) and any(not m.published for _, m in members())
    # Every document is a real PDF whose text can be read.
    assert count(seeded.settings, "document") > 2 * deposited
    assert sorted(p.name for p in (seeded.settings.home / demo.KEYS_DIR).iterdir()) == \
        sorted(f"{code}.private.pem" for code in OFFICES)
    # The dashboard shows the seed from the first minute, not after the hourly rollup.
    with seeded.admin() as http:
        totals = http.get("/v1/stats").json()["totals"]
    assert totals["deposits"] == deposited
    assert totals["aspec_accepted"] + totals["aspec_rejected"] + totals["aspec_withdrawn"] == len(REQUESTS)


def test_a_priority_chain_and_a_pct_family_link_up(seeded):
    with seeded.client("AU") as http:
        family = http.get("/v1/applications/AU/2023221234/family").json()
    assert {(m["office"], m["number"]) for m in family["members"]} >= {
        ("AU", "2023221234"), ("EP", "22193456.7"), ("SG", "10202306789P")}
    au = next(m for m in family["members"] if m["office"] == "AU")
    ep = next(m for m in family["members"] if m["office"] == "EP")
    assert au["priorities"][0]["number"] == "22193456.7" and ep["priorities"][0]["office"] == "DE"
    with seeded.client("VN") as http:
        found = http.get("/v1/applications", params={"number": "PCT/SG2023/050123"}).json()
    assert {(a["office"], a["number"]) for a in found} >= {("SG", "PCT/SG2023/050123"), ("VN", "1-2025-04512")}


def test_every_aspec_request_has_its_intended_outcome(seeded):
    with seeded.admin() as http:
        got = http.get("/v1/aspec-requests").json()
    actual = Counter((f"{r['application']['office']} {r['application']['number']}",
                      f"{r['first_office_application']['office']} {r['first_office_application']['number']}",
                      r["route"], r["status"], tuple(sorted(r["reasons"])), r["basis"]) for r in got)
    intended = Counter((r.so, r.fo, r.route, r.status, tuple(sorted(r.reasons)), r.basis) for r in REQUESTS)
    assert actual == intended
    assert {r["status"] for r in got} == {"accepted", "rejected", "withdrawn"}
    assert {r["basis"] for r in got if r["status"] == "accepted"} == {"priority", "common_priority", "pct"}
    assert {reason for r in got for reason in r["reasons"]} == REASONS
    assert any(r["route"] == "PCT-ASPEC" and r["status"] == "accepted" for r in got)


def _dossiers_of(seeded: Seeded, office: str, number: str) -> list[str]:
    with seeded.client(office) as http:
        family = http.get(f"/v1/applications/{office}/{number}/family").json()
    own = next(m for m in family["members"] if m["office"] == office and m["number"] == number)
    return [d["dossier_id"] for d in own["dossiers"]]


def test_an_examiner_sees_a_partners_reports_as_the_rules_say(seeded):
    # SG's examiner: MY's published search report in the family of SG's application.
    with seeded.client("SG", roles=("examiner",)) as http:
        family = http.get("/v1/applications/SG/10202301234X/family").json()
        my = next(m for m in family["members"] if m["office"] == "MY")
        sr = next(d for dossier in my["dossiers"] for d in dossier["documents"] if d["type"] == "SR")
        pdf = http.get(sr["href"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and b"(Search report - MY PI2022001234) Tj" in pdf.content
    assert b"US 2019/0372345 A1" in pdf.content

    # SG's reports on its unpublished application: MY's accepted request opens them, PH withdrew
    # its own, BN never asked.
    unpublished = _dossiers_of(seeded, "SG", "10202505678W")
    assert len(unpublished) == 2
    for office, status in [("MY", 200), ("PH", 404), ("BN", 404)]:
        with seeded.client(office, roles=("examiner",)) as http:
            assert [http.get(f"/v1/dossiers/{d}").status_code for d in unpublished] == [status, status], office
    with seeded.client("BN", roles=("examiner",)) as http:
        family = http.get("/v1/applications/BN/BN:N20260042/family").json()
    assert [m["office"] for m in family["members"]] == ["BN"]  # SG's unpublished application stays out of sight


def test_a_second_start_reuses_the_finished_seed(seeded):
    before = {t: count(seeded.settings, t) for t in ("office", "application", "dossier", "aspec_request", "web_user")}
    assert demo.previous_seed(seeded.settings) == seeded.creds
    assert {t: count(seeded.settings, t) for t in before} == before
    assert (seeded.settings.home / "exchange.db").exists()


def _half_seeded(settings: Settings) -> None:
    """What an interrupted seed leaves: demo.json without its end, an office, stored blobs."""
    settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine).begin() as s:
            registry.create_office(s, code="SG", name="IPOS", roles=["depositing"], settings=None, actor="test")
    finally:
        engine.dispose()
    (settings.home / demo.CREDENTIALS).write_text(json.dumps({"url": "http://127.0.0.1:1", "started_at": "x"}))
    (settings.home / "blobs" / "ab").mkdir(parents=True)
    (settings.home / "blobs" / "ab" / "abcd").write_bytes(b"blob")


def test_an_interrupted_seed_on_the_embedded_default_is_cleared(tmp_path):
    settings = embedded(tmp_path / "home")
    _half_seeded(settings)
    assert demo.previous_seed(settings) is None
    assert not (settings.home / "exchange.db").exists() and not (settings.home / "blobs").exists()
    assert not (settings.home / demo.CREDENTIALS).exists()


def test_an_interrupted_seed_elsewhere_names_what_to_remove(tmp_path):
    settings = Settings.from_env({"EXCHANGE_HOME": str(tmp_path / "home"),
                                  "EXCHANGE_DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.db'}"})
    _half_seeded(settings)
    with pytest.raises(click.ClickException) as exc:
        demo.previous_seed(settings)
    assert "did not finish" in exc.value.message and str(tmp_path / "elsewhere.db") in exc.value.message
    assert str(settings.home / demo.CREDENTIALS) in exc.value.message
    assert count(settings, "office") == 1 and (settings.home / demo.CREDENTIALS).exists()


def test_an_exchange_the_demo_did_not_seed_is_left_alone(tmp_path):
    settings = embedded(tmp_path / "home")
    _half_seeded(settings)
    (settings.home / demo.CREDENTIALS).unlink()
    with pytest.raises(click.ClickException) as exc:
        demo.previous_seed(settings)
    assert "did not seed" in exc.value.message and str(settings.home / "exchange.db") in exc.value.message
    assert count(settings, "office") == 1


# --- the command itself -----------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoProcess:
    """``exchange demo`` in its own process group (its embedded worker with it)."""

    def __init__(self, home: Path, port: int, name: str):
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXCHANGE_")}
        env.update(EXCHANGE_HOME=str(home), EXCHANGE_LOG_LEVEL="WARNING")
        self.out, self.err = home.parent / f"{name}.out", home.parent / f"{name}.err"
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "exchange.cli", "demo", "--port", str(port)],
                                         env=env, stdout=out, stderr=err, start_new_session=True)

    def wait_for(self, done, timeout: float) -> None:
        start = time.monotonic()
        while not done():
            assert self.proc.poll() is None, self.err.read_text()
            assert time.monotonic() - start < timeout, f"not within {timeout} s: {self.err.read_text()}"
            time.sleep(0.1)

    def banner(self) -> str:
        return self.out.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of the group is left
            except ProcessLookupError:
                pass


def _rows(db: Path, table: str) -> int:
    if not db.exists():
        return 0
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as c:
        try:
            return c.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return 0


def _sign_in(url: str, username: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=30) as http:
        form = http.get("/signin")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        r = http.post("/signin", data={"username": username, "password": password, "csrf_token": csrf, "next": "/"})
        assert r.status_code == 303 and "exchange_session" in http.cookies, r.text
        return http.get("/", follow_redirects=True)


def test_exchange_demo_recovers_seeds_prints_every_sign_in_and_reuses(tmp_path):
    home = tmp_path / "home"
    db = home / "exchange.db"

    # A first start stopped dead while seeding: the next one starts afresh.
    first = DemoProcess(home, _free_port(), "first")
    try:
        first.wait_for(lambda: _rows(db, "office") > 0, timeout=60)
    finally:
        first.stop(signal.SIGKILL)
    assert "seeded_at" not in json.loads((home / demo.CREDENTIALS).read_text())

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    second = DemoProcess(home, port, "second")
    try:
        second.wait_for(lambda: "Stop with Ctrl-C" in second.banner(), timeout=60)
        assert "did not finish" in second.err.read_text()
        creds = json.loads((home / demo.CREDENTIALS).read_text())
        banner = second.banner()
        assert f"running at {url}" in banner and "Seeded 14 offices" in banner
        assert f"administrator: admin / {creds['people']['admin']['password']}" in banner
        for code in OFFICES:
            e = creds["people"]["examiners"][code]
            assert re.search(rf"^  {code} +{e['username']} +{re.escape(e['password'])} ", banner, re.M), code
        page = _sign_in(url, "examiner.sg", creds["people"]["examiners"]["SG"]["password"])
        assert page.status_code == 200 and "Examiner at SG" in page.text
        page = _sign_in(url, "admin", creds["people"]["admin"]["password"])
        assert page.status_code == 200 and page.url.path == "/admin"
    finally:
        second.stop()
    counts = {t: _rows(db, t) for t in ("office", "application", "dossier", "aspec_request", "web_user")}
    assert counts == {"office": 14, "application": len(members()), "dossier": creds["counts"]["dossiers"],
                      "aspec_request": len(REQUESTS), "web_user": 29}

    # Started again, at another port: the same data, and the demo's webhooks follow it.
    port = _free_port()
    third = DemoProcess(home, port, "third")
    try:
        third.wait_for(lambda: "Stop with Ctrl-C" in third.banner(), timeout=30)
        assert "Reusing 14 offices" in third.banner() and f"running at http://127.0.0.1:{port}" in third.banner()
    finally:
        third.stop()
    assert {t: _rows(db, t) for t in counts} == counts
    assert json.loads((home / demo.CREDENTIALS).read_text())["url"] == f"http://127.0.0.1:{port}"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        active = c.execute("SELECT url FROM webhook_subscription WHERE status = 'active'").fetchall()
    assert sorted(u for (u,) in active) == [f"http://127.0.0.1:{port}/_demo/webhooks/{code}"
                                            for code in ("MY", "SG", "TH")]
