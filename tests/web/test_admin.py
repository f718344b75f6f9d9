"""Administrator pages in a real browser: agreements switched off and on for the very next
request, lock-out, CSRF, an office-admin's own office (keys, clients, people) and nobody
else's, the audit log with its chain verification, statistics, webhooks, and the layout at
768 px. Every page is reached through the seeded world of ``web_world``."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import sqlalchemy as sa

from dossiers import stats, subscriptions, users
from dossiers.db import utcnow
from dossiers.models import WebhookDelivery
from tests.support import new_key
from tests.web.conftest import PASSWORD, shot


def cookies(page) -> dict:
    return {c["name"]: c for c in page.context.cookies()}


def csrf_of(page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value")


def flash(page) -> str:
    return page.locator("p.flash").first.inner_text()


def agreement_status(world) -> str:
    r = httpx.get(f"{world.url}/v1/agreements/{world.agreement_id}", headers=world.admin)
    assert r.status_code == 200, r.text
    return r.json()["status"]


def examiner_pages_exist(world) -> bool:
    """The examiner's dossier page is written alongside these pages; until it exists the test
    reads MY's dossier through the API as SG instead (the same access gate decides both)."""
    app = world.stack.server.config.app
    return any(getattr(r, "path", "") == "/dossiers/{dossier_id}" and "GET" in getattr(r, "methods", ())
               for r in app.routes)


def a11y_problems(page) -> list[str]:
    """Form controls without a label, headings that skip a level, tables without header scope,
    images without a name: what a keyboard or screen-reader user would trip over first."""
    return page.evaluate("""() => {
      const out = [];
      for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
        if (!el.labels.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
          out.push('unlabelled ' + (el.name || el.id));
      }
      let last = 0;
      for (const h of document.querySelectorAll('main h1, main h2, main h3, main h4')) {
        const level = +h.tagName[1];
        if (level > last + 1) out.push('heading jumps to ' + h.tagName + ': ' + h.textContent.trim());
        last = level;
      }
      for (const th of document.querySelectorAll('th'))
        if (!th.getAttribute('scope')) out.push('th without scope: ' + th.textContent.trim());
      for (const svg of document.querySelectorAll('svg[role=img]'))
        if (!svg.getAttribute('aria-labelledby')) out.push('svg without name');
      const wide = document.documentElement.scrollWidth;
      if (wide > window.innerWidth + 1) out.push('page scrolls sideways: ' + wide);
      return out;
    }""")


# --- (1) agreements: suspension cuts access on the very next load; resume restores it -------

def test_suspend_and_resume_take_effect_on_the_next_request(browser, page, web_world):
    url, sg = web_world.url, web_world.kits["SG"]
    with_pages = examiner_pages_exist(web_world)
    examiner = browser.new_context(viewport={"width": 1280, "height": 900})
    ep = examiner.new_page()
    try:
        web_world.sign_in(ep, "examiner")  # signed in before the suspension
        dossier = f"{url}/dossiers/{web_world.my_dossier}"
        if with_pages:
            assert ep.goto(dossier).status == 200
        assert httpx.get(f"{url}/v1/dossiers/{web_world.my_dossier}", headers=sg.headers).status_code == 200

        web_world.sign_in(page, "admin")
        assert page.url.endswith("/admin")  # the exchange's admin lands on the administration
        page.goto(f"{url}/admin/agreements")
        row = page.locator(f"#agreement-{web_world.agreement_id}")
        assert row.get_attribute("data-status") == "active"
        shot(page, "admin-agreements")
        row.get_by_role("button", name="Suspend").click()
        assert "/admin/agreements" in page.url and "is now suspended" in flash(page)
        assert row.get_attribute("data-status") == "suspended"
        assert agreement_status(web_world) == "suspended"

        if with_pages:
            assert ep.goto(dossier).status == 404  # the very next load, same session
        assert httpx.get(f"{url}/v1/dossiers/{web_world.my_dossier}", headers=sg.headers).status_code == 404

        row.get_by_role("button", name="Resume").click()
        assert "is now active" in flash(page) and row.get_attribute("data-status") == "active"
        if with_pages:
            assert ep.goto(dossier).status == 200
        assert httpx.get(f"{url}/v1/dossiers/{web_world.my_dossier}", headers=sg.headers).status_code == 200
        # The flash message was shown once and is gone on the next load.
        page.reload()
        assert page.locator("p.flash").count() == 0
    finally:
        examiner.close()


# --- (2) wrong password, lock-out, and what the office-admin sees of it -------------------------

def test_wrong_passwords_lock_the_account(browser, page, web_world):
    page.goto(f"{web_world.url}/admin")
    assert "/signin?next=%2Fadmin" in page.url  # signed out: sent to sign in first
    web_world.sign_in(page, "sg-admin", password="not the password")
    assert page.locator("#signin-error").inner_text() == users.REFUSED
    assert "exchange_session" not in cookies(page)
    for _ in range(4):
        web_world.sign_in(page, "sg-admin", password="still not the password")
        assert "exchange_session" not in cookies(page)
    web_world.sign_in(page, "sg-admin")  # the sixth attempt has the right password: too late
    assert page.locator("#signin-error").inner_text() == users.REFUSED  # as for anyone: no tell
    assert "exchange_session" not in cookies(page)

    web_world.sign_in(page, "admin")  # the exchange's admin sees the lock and the refusals
    page.goto(f"{web_world.url}/admin/offices/SG#people")
    row = page.locator("#people ~ .table-wrap tr", has_text=web_world.people["sg-admin"])
    assert "locked" in row.inner_text()
    page.goto(f"{web_world.url}/admin/audit?action=user.sign_in&outcome=refused")
    assert page.locator("#audit tbody tr").count() == 6


# --- (3) CSRF --------------------------------------------------------------------------------

def test_a_form_without_its_csrf_token_changes_nothing(page, web_world):
    url = web_world.url
    web_world.sign_in(page, "admin")
    page.goto(f"{url}/admin/agreements")
    # A forged cross-site post carries the session cookie but not the token.
    r = page.request.post(f"{url}/admin/agreements/{web_world.agreement_id}/suspend", form={"x": "1"})
    assert r.status == 403 and "security token" in r.text()
    r = page.request.post(f"{url}/admin/agreements/{web_world.agreement_id}/suspend", form={"csrf_token": "guess"})
    assert r.status == 403
    # The page's own form with its hidden token removed, submitted by the button.
    row = page.locator(f"#agreement-{web_world.agreement_id}")
    page.evaluate("""id => document.querySelectorAll('#agreement-' + id + ' input[name=csrf_token]')
                          .forEach(e => e.remove())""", web_world.agreement_id)
    with page.expect_response(lambda resp: resp.request.method == "POST") as answer:
        row.get_by_role("button", name="Suspend").click()
    assert answer.value.status == 403
    assert "security token" in page.locator("#error-detail").inner_text()
    assert agreement_status(web_world) == "active"
    # ...and the same with the token is accepted, for the record.
    page.goto(f"{url}/admin/agreements")
    r = page.request.post(f"{url}/admin/agreements/{web_world.agreement_id}/suspend",
                          form={"csrf_token": csrf_of(page)}, max_redirects=0)
    assert r.status == 303 and agreement_status(web_world) == "suspended"


# --- (4) an office-admin manages its own office, and no other ----------------------------------

def test_office_admin_registers_rotates_and_refuses_keys(page, web_world):
    url = web_world.url
    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin")
    assert page.get_by_role("link", name="Manage SG").count() == 1
    assert page.get_by_role("link", name="Manage MY").count() == 0
    page.goto(f"{url}/admin/offices/SG")
    assert "Only the exchange's admin changes" in page.locator("section", has=page.locator("#settings")).inner_text()

    key = new_key("ES256")
    page.fill("#key-pem", key.public().pem)
    page.select_option("#key-alg", "ES256")
    page.click("form[action$='/keys'] button[type=submit]")  # kid left empty: the RFC 7638 thumbprint
    assert f"Key {key.kid} (ES256) registered" in flash(page)
    assert page.locator("#keys ~ .table-wrap tr", has_text=key.kid).locator(".pill").inner_text() == "valid"
    keys = httpx.get(f"{url}/v1/offices/SG/keys", headers=web_world.admin).json()
    assert key.kid in [k["kid"] for k in keys]

    # Rotation: a new key registered and the one just added revoked, in one form.
    newer = new_key("ES384")
    page.select_option("#rot-old", key.kid)
    page.fill("#rot-pem", newer.public().pem)
    page.select_option("#rot-alg", "ES384")
    page.fill("#rot-reason", "scheduled rotation")
    page.click("form[action$='/keys/rotate'] button[type=submit]")
    assert f"rotated to {newer.kid}" in flash(page)
    keys = {k["kid"]: k for k in httpx.get(f"{url}/v1/offices/SG/keys", headers=web_world.admin).json()}
    assert keys[key.kid]["revoked_at"] and not keys[newer.kid]["revoked_at"]

    # A refused form says why and keeps nothing.
    page.fill("#key-pem", "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----")
    page.click("form[action$='/keys'] button[type=submit]")
    assert page.locator("p.flash.error").count() == 1 and "Not done" in flash(page)
    assert len(httpx.get(f"{url}/v1/offices/SG/keys", headers=web_world.admin).json()) == len(keys)
    assert a11y_problems(page) == []


def test_office_admin_creates_clients_and_people_of_its_office_only(browser, page, web_world):
    url = web_world.url
    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin/offices/SG")
    page.fill("#client-name", "SG docketing system")
    assert page.is_checked("#client-roles-1")  # depositor, ticked already
    page.check("#client-roles-2")  # examiner as well
    page.click("form[action$='/clients'] button[type=submit]")
    secret = page.locator("#client-secret").inner_text()
    client_id = page.locator("#client-id").inner_text()
    assert page.locator("#roles").inner_text() == "depositor, examiner"
    shot(page, "admin-client-secret")
    r = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": client_id,
                                                "client_secret": secret})
    assert r.status_code == 200  # the secret shown works...
    page.get_by_role("link", name="Done").click()
    assert client_id in page.content() and secret not in page.content()  # ...and is never shown again

    page.fill("#user-name", "new-examiner@sg")
    page.fill("#user-display", "New Examiner")
    page.fill("#user-password", PASSWORD)
    page.click("form[action$='/users'] button[type=submit]")
    assert "New Examiner (new-examiner@sg) can now sign in as examiner" in flash(page)
    assert page.locator("#people ~ .table-wrap", has_text="new-examiner@sg").count() == 1
    shot(page, "admin-office")
    assert a11y_problems(page) == []

    other = browser.new_context()
    try:
        op = other.new_page()
        op.goto(f"{url}/signin")
        op.fill("#username", "new-examiner@sg")
        op.fill("#password", PASSWORD)
        op.click("button[type=submit]")
        assert "exchange_session" in cookies(op)
        assert op.goto(f"{url}/admin").status == 403  # an examiner is no administrator
    finally:
        other.close()

    # Another office's pages and forms, and the admin-only settings, are refused.
    for path in ("/admin/offices/MY", "/admin/offices/MY/webhooks"):
        assert page.goto(f"{url}{path}").status == 404  # as an office that does not exist
        assert page.locator("#error-detail").count() == 1
    page.goto(f"{url}/admin/offices/SG")
    token = csrf_of(page)
    other_key = new_key("ES256")
    r = page.request.post(f"{url}/admin/offices/MY/keys", form={
        "csrf_token": token, "public_key_pem": other_key.public().pem, "alg": "ES256"}, max_redirects=0)
    assert r.status == 404
    r = page.request.post(f"{url}/admin/offices/SG/settings", form={
        "csrf_token": token, "requires_cct": "yes", "accepts_written_opinion": "default"}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(f"{url}/admin/agreements/{web_world.agreement_id}/terminate", form={"csrf_token": token},
                          max_redirects=0)
    assert r.status == 403 and agreement_status(web_world) == "active"
    my_keys = httpx.get(f"{url}/v1/offices/MY/keys", headers=web_world.admin).json()
    assert other_key.kid not in [k["kid"] for k in my_keys]


# --- the lifecycle of people and clients: when a person leaves or a secret leaks ----------------

def person_row(page, username: str):
    return page.locator("#people ~ .table-wrap tr", has_text=username)


def signed_in(page, url: str) -> bool:
    """Whether the browser's session still opens a page (a dead session's cookie may linger)."""
    page.goto(f"{url}/")
    return "/signin" not in page.url


def test_office_admin_disables_unlocks_and_resets_people(browser, page, web_world):
    url, examiner = web_world.url, web_world.people["examiner"]
    other = browser.new_context()
    try:
        ep = other.new_page()
        web_world.sign_in(ep, "examiner")
        assert signed_in(ep, url)

        web_world.sign_in(page, "sg-admin")
        page.goto(f"{url}/admin/offices/SG")
        assert person_row(page, web_world.people["sg-admin"]).get_by_role("button", name="Disable").count() == 0
        person_row(page, examiner).get_by_role("button", name="Disable").click()
        assert "is disabled and signed out everywhere" in flash(page)
        assert person_row(page, examiner).locator(".pill").inner_text() == "disabled"

        assert not signed_in(ep, url)  # the open session ended: the next load asks to sign in
        web_world.sign_in(ep, "examiner")
        assert ep.locator("#signin-error").inner_text() == users.REFUSED
        assert not signed_in(ep, url)

        person_row(page, examiner).get_by_role("button", name="Enable").click()
        assert "is enabled" in flash(page)
        with web_world.stack.engine.begin() as c:  # locked out, as after five wrong passwords
            c.execute(sa.text("UPDATE web_user SET locked_until = :t WHERE username = :u"),
                      {"t": utcnow() + timedelta(minutes=10), "u": examiner})
        page.reload()
        person_row(page, examiner).get_by_role("button", name="Unlock").click()
        assert "is unlocked" in flash(page)
        web_world.sign_in(ep, "examiner")
        assert signed_in(ep, url)

        row = person_row(page, examiner)
        row.locator("summary").click()
        row.get_by_label(f"New password for {examiner}").fill("a brand new passphrase")
        row.get_by_role("button", name="Set password").click()
        assert "has a new password" in flash(page)
        assert not signed_in(ep, url)  # signed out by the reset
        web_world.sign_in(ep, "examiner")
        assert ep.locator("#signin-error").count() == 1
        web_world.sign_in(ep, "examiner", password="a brand new passphrase")
        assert signed_in(ep, url)
        assert a11y_problems(page) == []

        # Nobody disables themselves, even with a hand-made form.
        me = person_row(page, web_world.people["sg-admin"]).get_attribute("id").removeprefix("person-")
        r = page.request.post(f"{url}/admin/offices/SG/users/{me}/disable", form={"csrf_token": csrf_of(page)})
        assert r.status == 200 and "your own account" in r.text()
    finally:
        other.close()


def test_client_secret_replaced_once_and_lifecycle_forms_need_csrf(page, web_world):
    url, sg = web_world.url, web_world.kits["SG"]
    held = sg.headers  # a token got with the secret about to be replaced
    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin/offices/SG")
    row = page.locator(f"#client-{sg.client_id}")
    examiner = person_row(page, web_world.people["examiner"]).get_attribute("id").removeprefix("person-")

    # A forged post carries the session cookie but not the token: refused, nothing changed.
    for path in (f"clients/{sg.client_id}/disable", f"clients/{sg.client_id}/secret",
                 f"users/{examiner}/disable", f"users/{examiner}/password"):
        r = page.request.post(f"{url}/admin/offices/SG/{path}", form={"x": "1"})
        assert r.status == 403 and "security token" in r.text(), path
    assert httpx.get(f"{url}/v1/offices", headers=held).status_code == 200
    web_world.sign_in(page, "examiner")  # ...and the person was not disabled
    assert signed_in(page, url)

    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin/offices/SG")
    row.get_by_role("button", name="Replace secret").click()
    secret = page.locator("#client-secret").inner_text()
    assert page.locator("#client-id").inner_text() == sg.client_id and secret != sg.client_secret
    assert httpx.get(f"{url}/v1/offices", headers=held).status_code == 401  # the old token, at once
    old = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": sg.client_id,
                                                  "client_secret": sg.client_secret})
    assert old.status_code == 401
    new = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials", "client_id": sg.client_id,
                                                  "client_secret": secret})
    assert new.status_code == 200
    page.get_by_role("link", name="Done").click()
    assert sg.client_id in page.content() and secret not in page.content()  # shown once only

    row.get_by_role("button", name="Disable").click()
    assert "is disabled" in flash(page) and row.locator(".pill").inner_text() == "disabled"
    fresh = {"Authorization": f"Bearer {new.json()['access_token']}"}
    assert httpx.get(f"{url}/v1/offices", headers=fresh).status_code == 401
    row.get_by_role("button", name="Enable").click()
    assert "is enabled" in flash(page) and row.locator(".pill").inner_text() == "active"
    actions = [e["action"] for e in httpx.get(f"{url}/v1/audit", headers=web_world.admin).json()["items"]]
    assert {"client.rotate_secret", "client.disable", "client.enable"} <= set(actions)


def test_an_exchange_admin_adds_another(browser, page, web_world):
    url = web_world.url
    web_world.sign_in(page, "admin")
    page.get_by_role("link", name="Administrators", exact=True).click()
    assert page.url.endswith("/admin/people")
    page.fill("#user-name", "second-admin@exchange")
    page.fill("#user-display", "Second Admin")
    page.fill("#user-password", PASSWORD)
    page.get_by_role("button", name="Add administrator").click()
    assert "Second Admin (second-admin@exchange) can now sign in as admin" in flash(page)
    assert a11y_problems(page) == []
    other = browser.new_context()
    try:
        op = other.new_page()
        op.goto(f"{url}/signin")
        op.fill("#username", "second-admin@exchange")
        op.fill("#password", PASSWORD)
        op.click("button[type=submit]")
        assert op.url.endswith("/admin") and op.goto(f"{url}/admin/offices/MY").status == 200
    finally:
        other.close()
    page.context.clear_cookies()
    web_world.sign_in(page, "sg-admin")  # an office-admin does not manage the exchange's admins
    assert page.goto(f"{url}/admin/people").status == 403


# --- (5) audit log and statistics ---------------------------------------------------------------

def test_audit_log_and_statistics(page, web_world):
    url, stack = web_world.url, web_world.stack
    for _ in range(3):  # SG reads MY's dossier: granted accesses for the statistics
        assert httpx.get(f"{url}/v1/dossiers/{web_world.my_dossier}",
                         headers=web_world.kits["SG"].headers).status_code == 200
    stats.rollup(stack.session_factory)

    web_world.sign_in(page, "admin")
    page.goto(f"{url}/admin/audit?limit=10")
    assert "verified" in page.locator("#chain-status").inner_text()
    rows = page.locator("#audit tbody tr")
    assert rows.count() == 10 and page.get_by_role("link", name="Older entries").count() == 1
    seqs = [int(x) for x in page.locator("#audit tbody th").all_inner_texts()]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    shot(page, "admin-audit")
    page.get_by_role("link", name="Older entries").click()
    older = [int(x) for x in page.locator("#audit tbody th").all_inner_texts()]
    assert len(older) == 10 and max(older) == min(seqs) - 1
    page.goto(f"{url}/admin/audit")
    page.select_option("#f-outcome", "granted")
    page.select_option("#f-office", "SG")
    page.get_by_role("button", name="Filter").click()
    assert "outcome=granted" in page.url
    texts = page.locator("#audit tbody tr").all_inner_texts()
    assert len(texts) >= 3 and all("access.decision" in t and "granted" in t for t in texts)
    assert a11y_problems(page) == []

    page.goto(f"{url}/admin/stats")
    shot(page, "admin-stats")
    assert page.locator("figure.chart svg[role=img]").count() == 2 * 3  # deposits, accesses × SG, MY, JP
    assert page.locator("#dep-MY rect.bar").count() == 12
    assert page.locator("#dep-MY text.value").all_text_contents() == ["1"]  # MY deposited once this month
    assert page.locator("#acc-MY text.value").all_text_contents() == ["3"]  # read three times by SG
    assert page.locator("#acc-SG text.value").count() == 0
    assert "3" in page.locator("#acc-MY desc").text_content()
    # MY's documents SG may read (MY's row, SG's column) and the reverse; JP shares nothing.
    assert page.locator("#cov-MY-SG").inner_text().split() == ["CLAIMS", "ER", "SR", "WO"]
    assert page.locator("#cov-SG-MY").inner_text().split() == ["CLAIMS", "ER", "SR", "WO"]
    jp_row = page.locator("#coverage tbody tr", has=page.locator("th[scope=row]", has_text="JP"))
    assert jp_row.locator("td.shared").count() == 0 and jp_row.locator("td.none").count() == 2
    assert "nothing shared" in page.locator("#cov-SG-JP").inner_text()
    assert a11y_problems(page) == []

    # The office-admin sees its own office's entries and figures only.
    page.context.clear_cookies()
    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin/audit?office=MY")
    offices = set(page.locator("#audit tbody td:nth-child(5)").all_inner_texts())
    assert offices == {"SG"} and page.locator("#f-office").count() == 0
    page.goto(f"{url}/admin/stats")
    assert page.locator("figure.chart").count() == 2 and page.locator("#dep-SG").count() == 1
    assert [t.strip() for t in page.locator("#coverage thead th").all_inner_texts()] == ["MY", "SG"]


def test_a_broken_audit_chain_is_reported_with_its_entry(page, web_world):
    with web_world.stack.engine.begin() as c:
        seq = c.execute(sa.text("SELECT min(seq) + 2 FROM audit_entry")).scalar_one()
        c.execute(sa.text("UPDATE audit_entry SET reason = 'rewritten' WHERE seq = :s"), {"s": seq})
    web_world.sign_in(page, "admin")
    page.goto(f"{web_world.url}/admin/audit")
    assert page.locator("#chain-status").inner_text().startswith(f"Hash chain broken at entry {seq}")


def test_the_audit_filters_offer_every_action_and_outcome_and_views_verify_only_new_entries(page, web_world):
    from dossiers.vocab import AuditAction, AuditOutcome

    web_world.sign_in(page, "admin")
    page.goto(f"{web_world.url}/admin/audit")
    actions = page.locator("#f-actions option").evaluate_all("os => os.map(o => o.value)")
    outcomes = page.locator("#f-outcome option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(actions) == sorted(a.value for a in AuditAction)
    assert outcomes == [""] + [o.value for o in AuditOutcome]  # "any", then each outcome
    assert "rejected" in outcomes and "webhook.deleted" in actions and "blob.sweep" in actions
    watch = web_world.stack.server.config.app.state.audit_chain_watch
    first = int(page.locator("#chain-status").inner_text().split("verified: ")[1].split()[0])
    walks = watch.full_walks
    page.goto(f"{web_world.url}/admin/audit?outcome=rejected")  # sign-in and views appended entries
    page.goto(f"{web_world.url}/admin/audit")
    assert watch.full_walks == walks  # the later views carried the checkpoint forward
    assert int(page.locator("#chain-status").inner_text().split("verified: ")[1].split()[0]) >= first
    with web_world.stack.engine.begin() as c:  # the last verified entry is checked again on each view
        seq = c.execute(sa.text("SELECT max(seq) FROM audit_entry")).scalar_one()
        c.execute(sa.text("UPDATE audit_entry SET reason = 'rewritten' WHERE seq = :s"), {"s": seq})
    page.goto(f"{web_world.url}/admin/audit")
    assert page.locator("#chain-status").inner_text().startswith("Hash chain broken at entry")


# --- the exchange's admin: offices, settings, agreements, webhooks ------------------------------

def test_admin_registers_an_office_sets_its_settings_and_creates_an_agreement(page, web_world):
    url = web_world.url
    web_world.sign_in(page, "admin")
    page.goto(f"{url}/admin/offices")
    page.fill("#office-code", "th")
    page.fill("#office-name", "Department of Intellectual Property, Thailand")
    page.get_by_role("button", name="Register office").click()
    assert page.url.endswith("/admin/offices/TH") and "Office TH registered" in flash(page)
    assert "In effect now: no (default)" in page.locator("#setting-accepts_written_opinion-now").inner_text()
    page.select_option("#setting-requires_cct", "yes")
    page.select_option("#setting-accepts_written_opinion", "yes")
    page.get_by_role("button", name="Save settings").click()
    assert "Settings of TH saved" in flash(page)
    office = httpx.get(f"{url}/v1/offices/TH", headers=web_world.admin).json()
    assert office["settings"]["aspec"] == {"requires_cct": True, "accepts_written_opinion": True}
    page.select_option("#setting-accepts_written_opinion", "default")
    page.get_by_role("button", name="Save settings").click()
    office = httpx.get(f"{url}/v1/offices/TH", headers=web_world.admin).json()
    assert office["settings"]["aspec"] == {"requires_cct": True}
    assert a11y_problems(page) == []

    page.goto(f"{url}/admin/agreements")
    page.fill("#ag-name", "SG-TH bilateral")
    page.select_option("#ag-program", "BILATERAL")
    for code in ("SG", "TH"):
        page.get_by_label(code, exact=True).check()
    page.get_by_label("CLAIMS", exact=True).check()
    page.get_by_role("button", name="Create agreement").click()
    assert "Agreement SG-TH bilateral created among SG, TH" in flash(page)
    made = [a for a in httpx.get(f"{url}/v1/agreements", headers=web_world.admin).json()
            if a["name"] == "SG-TH bilateral"]
    assert made and made[0]["members"] == ["SG", "TH"] and made[0]["document_types"] == ["CLAIMS", "ER", "SR", "WO"]
    assert made[0]["require_corresponding"] and not made[0]["share_unpublished"]
    # One member is not an agreement: refused, with the reason, and nothing created.
    page.fill("#ag-name", "lonely")
    page.get_by_label("JP", exact=True).check()
    page.get_by_role("button", name="Create agreement").click()
    assert "at least two" in page.locator("p.flash.error").inner_text()
    assert len(httpx.get(f"{url}/v1/agreements", headers=web_world.admin).json()) == 2
    assert a11y_problems(page) == []


def test_webhooks_page_subscribes_filters_and_redelivers(page, web_world):
    url, stack = web_world.url, web_world.stack
    web_world.sign_in(page, "sg-admin")
    page.goto(f"{url}/admin/offices/SG/webhooks")
    page.fill("#sub-url", "http://127.0.0.1:9/hook")  # loopback: refused
    page.get_by_role("button", name="Subscribe").click()
    assert "Not done" in page.locator("p.flash.error").inner_text()
    page.fill("#sub-url", "https://93.184.215.14/exchange-hooks")  # a literal public address: no DNS lookup
    page.get_by_label("dossier.deposited").check()
    page.get_by_role("button", name="Subscribe").click()
    assert page.locator("#signing-secret").inner_text().startswith("whsec_")
    page.get_by_role("link", name="Done").click()

    with stack.session_factory.begin() as s:
        sub = subscriptions.list_subscriptions(s, "SG")[0]
        now = utcnow()
        for status, attempts, code in (("delivered", 1, 200), ("dead", 9, 500)):
            s.add(WebhookDelivery(id=f"msg_{uuid.uuid4().hex[:20]}", subscription_id=sub.id, office_code="SG",
                                  event_id=str(uuid.uuid4()), topic="dossier.deposited", payload={}, status=status,
                                  attempts=attempts, last_status_code=code, created_at=now - timedelta(minutes=5),
                                  dead_at=now if status == "dead" else None))
    page.reload()
    shot(page, "admin-webhooks")
    assert page.locator(".pill", has_text="active").count() == 1
    dead = page.locator("#dead-h ~ .table-wrap tbody tr")
    assert dead.count() == 1 and "HTTP 500" in dead.inner_text()
    page.select_option("#log-status", "delivered")
    page.get_by_role("button", name="Filter").click()
    assert "status=delivered" in page.url
    assert page.locator("#log-h ~ .table-wrap tbody tr").count() == 1
    assert a11y_problems(page) == []

    dead.get_by_role("button", name="Redeliver").click()
    assert "queued again" in flash(page)
    assert page.locator("#dead-h ~ .table-wrap tbody tr", has_text="No dead letter").count() == 1
    page.get_by_role("button", name="Disable").click()
    assert "is now disabled" in flash(page)
    with stack.session_factory() as s:
        assert subscriptions.list_subscriptions(s, "SG")[0].status == "disabled"


# --- layout: every main page at 768 px, keyboard only ---------------------------------------------

def test_pages_work_at_768px_and_by_keyboard(browser, web_world):
    context = browser.new_context(viewport={"width": 768, "height": 1000})
    try:
        page = context.new_page()
        web_world.sign_in(page, "admin")
        for path, name in (("/admin", "admin-overview"), ("/admin/offices", "admin-offices"),
                           ("/admin/offices/SG", "admin-office-768"), ("/admin/agreements", "admin-agreements-768"),
                           ("/admin/offices/SG/webhooks", "admin-webhooks-768"), ("/admin/audit", "admin-audit-768"),
                           ("/admin/stats", "admin-stats-768")):
            assert page.goto(f"{web_world.url}{path}").status == 200, path
            assert a11y_problems(page) == [], path
            if name in ("admin-overview", "admin-offices", "admin-stats-768"):
                shot(page, name)
        # Keyboard only: Tab reaches the Suspend button, with a visible focus ring; Enter presses it.
        page.goto(f"{web_world.url}/admin/agreements")
        for _ in range(60):
            page.keyboard.press("Tab")
            label = page.evaluate("document.activeElement.textContent.trim()")
            if label.startswith("Suspend"):
                break
        else:
            raise AssertionError("the Suspend button is not reachable by keyboard")
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"
        with page.expect_navigation():  # the 303 back to the list, after the change is committed
            page.keyboard.press("Enter")
        assert "is now suspended" in flash(page)
        assert agreement_status(web_world) == "suspended"
    finally:
        context.close()
