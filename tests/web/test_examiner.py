"""The examiner pages in a real browser: look-up by any number, the family and its citations,
a partner's dossier and its PDF, the 404 that hides other offices' dossiers, ASPEC requests,
watches and the inbox, keyboard focus and a narrow window."""

from __future__ import annotations

import json
import re
import uuid

import sqlalchemy as sa

from tests.support import deposit, manifest, sign
from tests.web.conftest import _pdf, shot

SG_APP = "/applications/SG/10202301234X"


def signed_in(page, web_world, who: str = "examiner"):
    web_world.sign_in(page, who)
    assert "/signin" not in page.url, page.url


def test_search_by_priority_family_dossier_pdf_and_citations(page, web_world):
    signed_in(page, web_world)
    page.goto(f"{web_world.url}/search")
    page.fill("#q", "PI 2022/001234")  # MY's PI2022001234 as an examiner might type it
    page.press("#q", "Enter")
    results = page.locator("#search-results")
    assert "MY PI2022001234" in results.inner_text()
    assert "SG 10202301234X" in results.inner_text()
    assert "priority claim" in results.locator("tr", has_text="SG 10202301234X").inner_text()
    shot(page, "examiner-search")

    page.click("#search-results >> text=SG 10202301234X")
    assert page.url.endswith(SG_APP)
    family = page.locator("#family")
    assert family.locator("li[data-office=MY]").count() == 1 and family.locator("li[data-office=SG]").count() == 1
    my = family.locator("li[data-office=MY]")
    assert "SR" in my.locator(".ex-types").inner_text() and "WO" in my.locator(".ex-types").inner_text()
    assert "2022-03-02" in my.inner_text()  # its priority date on the timeline
    row = page.locator('#citations tr[data-cited="US2019123456A1"]')
    assert row.locator("td[data-office=MY] .tag").inner_text() == "X"
    assert row.locator("td[data-office=SG] .tag").inner_text() == "Y"
    assert "1–3" in row.locator("td[data-office=MY]").inner_text()
    assert page.locator('#citations tr[data-cited="EP3456789A1"] td[data-office=MY]').inner_text().startswith("A")
    shot(page, "examiner-application")

    my.locator("a[href^='/dossiers/']").first.click()
    page.wait_for_load_state("load")
    assert f"/dossiers/{web_world.my_dossier}" in page.url
    assert page.locator("#documents tbody tr").count() == 2
    assert "exchange verify" in page.locator("#verify-note").inner_text()
    src = page.locator("iframe.viewer").get_attribute("src")
    assert src == f"/dossiers/{web_world.my_dossier}/documents/sr-1/view"
    r = page.request.get(web_world.url + src)
    body = r.body()
    assert r.status == 200 and r.headers["content-type"] == "application/pdf" and body.startswith(b"%PDF")
    assert r.headers["content-length"] == str(len(body)) and r.headers["repr-digest"].startswith("sha-256=:")
    assert r.headers["etag"].startswith('"sha256-') and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("inline")
    shot(page, "examiner-dossier")

    href = page.locator("#documents tr[data-document=wo-1] a", has_text="Download").get_attribute("href")
    d = page.request.get(web_world.url + href)
    assert d.status == 200 and d.headers["content-disposition"] == 'attachment; filename="wo-1.pdf"'
    again = page.request.get(web_world.url + href, headers={"If-None-Match": d.headers["etag"]})
    assert again.status == 304


def test_empty_search_says_so(page, web_world):
    signed_in(page, web_world)
    page.goto(f"{web_world.url}/search?q=XX9999999")
    assert "No application matches" in page.locator("#no-results").inner_text()
    page.goto(f"{web_world.url}/search?q=---")  # no letter or digit at all
    assert page.locator("#no-results").count() == 1


def test_another_offices_dossier_is_the_same_404_as_an_unknown_id(page, web_world):
    signed_in(page, web_world)
    unknown = str(uuid.uuid4())
    pages = {}
    for name, dossier_id in (("jp", web_world.jp_dossier), ("unknown", unknown)):
        r = page.goto(f"{web_world.url}/dossiers/{dossier_id}")
        assert r.status == 404
        pages[name] = (page.title(), page.locator("main").inner_text().replace(dossier_id, "ID"))
        v = page.request.get(f"{web_world.url}/dossiers/{dossier_id}/documents/sr-1/view")
        assert v.status == 404 and v.headers["content-type"].startswith("text/html")
        pages[name + "-view"] = v.text().replace(dossier_id, "ID")
    assert pages["jp"] == pages["unknown"]
    assert re.sub(r'value="[^"]*"', "", pages["jp-view"]) == re.sub(r'value="[^"]*"', "", pages["unknown-view"])
    shot(page, "examiner-not-found")
    # An application of an office that shares nothing and is not published is not there either.
    assert page.goto(f"{web_world.url}/applications/JP/nothing-here").status == 404


def test_a_document_lost_from_storage_is_an_error_page_not_json(page, web_world):
    """The integrity failure reaches the examiner as a page saying so, and is audited."""
    import httpx

    from dossiers.storage import blob_key
    from tests.test_scrub import lose

    my = web_world.kits["MY"]
    docs = httpx.get(f"{web_world.url}/v1/dossiers/{web_world.my_dossier}", headers=my.headers).json()["documents"]
    lose(web_world.stack, blob_key(next(d["sha256"] for d in docs if d["id"] == "sr-1")))
    signed_in(page, web_world)
    for suffix in ("view", "download"):
        r = page.request.get(f"{web_world.url}/dossiers/{web_world.my_dossier}/documents/sr-1/{suffix}")
        assert r.status == 500 and r.headers["content-type"].startswith("text/html"), (r.status, r.headers)
        assert "integrity" in r.text() or "missing" in r.text()
    # The dossier page itself still opens: the other documents stay readable.
    assert page.goto(f"{web_world.url}/dossiers/{web_world.my_dossier}").status == 200
    with web_world.stack.engine.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM audit_entry WHERE action = 'blob.integrity'")).scalar() >= 1


def test_file_an_aspec_request_from_the_browser(page, web_world):
    signed_in(page, web_world)
    page.goto(web_world.url + SG_APP)
    page.click("text=File an ASPEC request")
    assert "/aspec/new?application=10202301234X" in page.url
    assert page.input_value("#fo_office") == "MY" and page.input_value("#fo_number") == "PI2022001234"
    boxes = page.locator("fieldset[data-office=MY] input[name=relied]")
    assert boxes.count() == 2
    page.fill("#relied_lines", "not a reference")  # first a mistake: the form comes back, nothing filed
    page.click("text=File the request")
    assert "dossier_id/document_id" in page.locator("#form-errors").inner_text()
    assert page.input_value("#application") == "10202301234X"
    shot(page, "examiner-aspec-form-errors")
    page.fill("#relied_lines", "")
    for i in range(boxes.count()):
        boxes.nth(i).check()
    page.click("text=File the request")
    assert re.search(r"/aspec/[0-9a-f-]{36}$", page.url), page.url
    assert "rejected" in page.locator("#request-status").inner_text()
    reasons = page.locator("#reasons").inner_text()
    assert "MISSING_CLAIMS" in reasons and "CLAIMS document" in reasons  # the code and what it means
    assert page.locator("#request-basis").inner_text().startswith("priority")
    shot(page, "examiner-aspec-request")

    page.click("text=Withdraw this request")
    assert "withdrawn" in page.locator("#request-status").inner_text()
    assert "withdrawn" in page.locator(".flash.ok").inner_text()
    page.goto(f"{web_world.url}/aspec")
    row = page.locator("#aspec-requests tbody tr")
    assert row.count() == 1 and "MY PI2022001234" in row.inner_text() and "MISSING_CLAIMS" in row.inner_text()
    shot(page, "examiner-aspec-list")


def test_watch_a_family_then_read_the_inbox(page, web_world):
    signed_in(page, web_world)
    page.goto(web_world.url + SG_APP)
    page.check("#watch input[name=document_types][value=ER]")
    page.fill("#watch-email", "")
    page.click("#watch button:has-text('Watch this family')")
    assert page.url.endswith(SG_APP + "?done=watch-added#watch")
    assert "Watch saved" in page.locator(".flash.ok").inner_text()
    assert "ER" in page.locator(".ex-watches").inner_text()

    files = {"er-1": _pdf("Examination report MY PI2022001234", ["Claims 1-3 lack novelty"])}
    m = manifest("MY", files, number="PI2022001234", types={"er-1": "ER"})
    r = deposit(web_world.kits["MY"], sign(m, web_world.kits["MY"].key), files)
    assert r.status_code == 201, r.text
    new_dossier = r.json()["dossier_id"]
    from workers import notify

    stack = web_world.stack
    with stack.engine.connect() as c:
        events = c.execute(sa.text("SELECT id, payload FROM outbox_event WHERE topic = 'dossier.deposited'")).all()
    for event_id, payload in events:
        if (json.loads(payload) if isinstance(payload, str) else payload)["dossier_id"] == new_dossier:
            notify.fan_out_event(stack.session_factory, event_id)

    page.goto(f"{web_world.url}/inbox")
    unread = page.locator("#notifications li.ex-unread")
    assert unread.count() == 1 and "MY deposited ER for PI2022001234" in unread.inner_text()
    assert page.locator("header .badge").inner_text() == "1"
    shot(page, "examiner-inbox")
    unread.locator("a", has_text="Open the dossier").click()
    page.wait_for_load_state("load")  # the viewer's document too: leave no transfer cut short
    assert page.url.endswith(f"/dossiers/{new_dossier}")
    page.go_back()
    page.click("#notifications button:has-text('Mark as read')")
    assert page.locator("#notifications li.ex-unread").count() == 0
    assert page.locator("#notifications li").count() == 1 and page.locator("header .badge").count() == 0
    page.click("#watches button:has-text('Remove')")
    assert "Watch removed" in page.locator(".flash.ok").inner_text()
    assert page.locator("#watches").count() == 0


def test_watch_with_a_bad_email_is_refused_with_a_message(page, web_world):
    signed_in(page, web_world)
    page.goto(web_world.url + SG_APP)
    page.evaluate("document.querySelector('#watch-email').type = 'text'")  # past the browser's own check
    page.fill("#watch-email", "not an address")
    page.click("#watch button:has-text('Watch this family')")
    assert "not saved" in page.locator(".flash.error").inner_text()
    assert page.locator(".ex-watches").count() == 0


def test_forms_without_their_csrf_token_are_refused(page, web_world):
    signed_in(page, web_world)
    for path in ("/watches", "/aspec", "/inbox/x/read", "/aspec/x/withdraw"):
        r = page.request.post(f"{web_world.url}{path}", form={"office": "SG", "number": "10202301234X"})
        assert r.status == 403, path


def test_pages_need_an_examiner_or_office_admin_of_an_office(page, web_world):
    page.goto(f"{web_world.url}/aspec")
    assert "/signin?next=" in page.url
    signed_in(page, web_world, "sg-admin")  # an office-admin reads, but files no ASPEC request (as the API)
    assert page.goto(web_world.url + SG_APP).status == 200
    assert page.locator("text=File an ASPEC request").count() == 0
    assert page.goto(f"{web_world.url}/aspec/new").status == 403
    page.context.clear_cookies()
    signed_in(page, web_world, "admin")  # the exchange's admin has no office: not an examiner page
    r = page.goto(f"{web_world.url}/search?q=PI2022001234")
    assert r.status == 403


def test_keyboard_reaches_the_search_input_with_a_visible_focus(page, web_world):
    signed_in(page, web_world)
    page.goto(f"{web_world.url}/search")
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "q":
            break
    else:
        raise AssertionError("Tab never reached the search input")
    style = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                          " return [s.outlineStyle, s.outlineWidth]; })()")
    assert style[0] not in ("none", "") and float(style[1].rstrip("px")) >= 2, style
    shot(page, "examiner-keyboard-focus")


def test_application_and_dossier_pages_fit_a_768_pixel_window(page, web_world):
    page.set_viewport_size({"width": 768, "height": 1024})
    signed_in(page, web_world)
    for path, name in ((SG_APP, "examiner-application-768"), (f"/dossiers/{web_world.my_dossier}",
                                                               "examiner-dossier-768")):
        page.goto(web_world.url + path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
        shot(page, name)


def test_every_examiner_route_declares_its_access():
    from exchange.web import examiner
    from tests.test_structure import access_of

    routes = examiner.router.routes
    assert len(routes) >= 14
    assert [r.path for r in routes if not any(a[0] == "web" for a in access_of(r.dependant))] == []
