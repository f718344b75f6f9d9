"""Browser tests: Debian's Chromium driven by Playwright (never a browser download), against
the exchange served on loopback, with people and data seeded through the real services."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from dossiers import users
from tests.conftest import missing
from tests.support import deposit, manifest, sign

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing("playwright", str(exc))
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        missing("Chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    p.set_default_timeout(15000)
    yield p
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@dataclass
class WebWorld:
    """SG (examiner, office-admin) and MY under an ASPEC agreement; MY deposited a search report
    with citations for PI2022001234, which SG's 10202301234X claims as priority; JP unrelated."""

    stack: object
    admin: dict
    kits: dict
    agreement_id: str
    my_dossier: str
    jp_dossier: str
    people: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.stack.url

    def sign_in(self, page, who: str, password: str = PASSWORD) -> None:
        page.goto(f"{self.url}/signin")
        page.fill("#username", self.people[who])
        page.fill("#password", password)
        page.click("button[type=submit]")


def _pdf(title: str, lines: list[str]) -> bytes:
    from exchange.demo.pdf import render

    return render(title, lines)


@pytest.fixture
def web_world(stack) -> WebWorld:
    admin = stack.admin()
    kits = {c: stack.office(c, admin=admin) for c in ("SG", "MY", "JP")}
    r = httpx.post(f"{stack.url}/v1/agreements", headers=admin, json={
        "name": "ASPEC", "program": "ASPEC", "members": ["SG", "MY"], "document_types": ["SR", "WO", "ER", "CLAIMS"],
        "valid_from": "2020-01-01T00:00:00Z"})
    agreement_id = r.json()["id"]
    files = {"sr-1": _pdf("Search report MY PI2022001234", ["Category X: US2019123456A1, claims 1-3"]),
             "wo-1": _pdf("Written opinion MY PI2022001234", ["Claim 1: novel and inventive"])}
    m = manifest("MY", files, number="PI2022001234", types={"sr-1": "SR", "wo-1": "WO"},
                 citations=None)
    m["citations"] = [{"cited": "US2019123456A1", "category": "X", "claims": [1, 2, 3]},
                      {"cited": "EP3456789A1", "category": "A", "claims": [4]}]
    m["documents"][1]["allowable_claims"] = [1]
    r = deposit(kits["MY"], sign(m, kits["MY"].key), files)
    assert r.status_code == 201, r.text
    my_dossier = r.json()["dossier_id"]
    sg_files = {"sr-1": _pdf("Search report SG 10202301234X", ["Category Y: US2019123456A1, claim 1"])}
    sm = manifest("SG", sg_files, number="10202301234X")
    sm["application"]["priorities"] = [{"office": "MY", "number": "PI2022001234", "date": "2022-03-02"}]
    sm["citations"] = [{"cited": "US 2019/123456 A1", "category": "Y", "claims": [1]}]
    assert deposit(kits["SG"], sign(sm, kits["SG"].key), sg_files).status_code == 201
    jp_files = {"sr-1": _pdf("Search report JP", ["nothing to see"])}
    r = deposit(kits["JP"], sign(manifest("JP", jp_files, number="2022-999999"), kits["JP"].key), jp_files)
    jp_dossier = r.json()["dossier_id"]
    people = {}
    with stack.session_factory.begin() as s:
        for who, office, roles in (("examiner", "SG", ["examiner"]), ("sg-admin", "SG", ["office-admin"]),
                                   ("my-examiner", "MY", ["examiner"]), ("admin", None, ["admin"])):
            u = users.create_user(s, username=f"{who}@test", display_name=who.title(), office=office,
                                  roles=roles, password=PASSWORD, email=None, actor="test")
            people[who] = u.username
    return WebWorld(stack, admin, kits, agreement_id, my_dossier, jp_dossier, people)
