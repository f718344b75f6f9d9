"""Sign-in, sign-out, lock-out and CSRF, in a real browser."""

from __future__ import annotations

from dossiers import users
from tests.web.conftest import PASSWORD, shot


def cookies(page) -> dict:
    return {c["name"]: c for c in page.context.cookies()}


def test_sign_in_and_out(page, web_world):
    page.goto(f"{web_world.url}/?q=PI2022001234")
    assert "/signin?next=" in page.url  # signed out: sent to sign in, and back afterwards
    shot(page, "signin")
    page.fill("#username", web_world.people["examiner"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.url.endswith("/?q=PI2022001234")
    c = cookies(page)["exchange_session"]
    assert c["httpOnly"] and c["sameSite"] == "Lax" and not c["secure"]  # plain HTTP here; Secure over TLS
    page.click("text=Sign out")
    assert "/signin" in page.url and "exchange_session" not in cookies(page)
    page.goto(f"{web_world.url}/")
    assert "/signin" in page.url


def test_wrong_password_and_lock_out(page, web_world):
    for _attempt in range(5):
        web_world.sign_in(page, "examiner", password="not the password")
        assert page.locator("#signin-error").inner_text() == users.REFUSED
        assert "exchange_session" not in cookies(page)
    web_world.sign_in(page, "examiner")  # the right password, but the account is locked now
    assert page.locator("#signin-error").inner_text() == users.REFUSED  # the same words as for anyone
    assert "exchange_session" not in cookies(page)
    web_world.sign_in(page, "sg-admin")  # others are not affected
    assert "exchange_session" in cookies(page)


def test_unknown_user_gets_the_same_message(page, web_world):
    page.goto(f"{web_world.url}/signin")
    page.fill("#username", "nobody@test")
    page.fill("#password", "whatever it is")
    page.click("button[type=submit]")
    assert page.locator("#signin-error").inner_text() == users.REFUSED


def test_sign_in_form_without_its_csrf_token_is_refused(page, web_world):
    page.goto(f"{web_world.url}/signin")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.fill("#username", web_world.people["examiner"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert "exchange_session" not in cookies(page)
    assert "try again" in page.locator("#signin-error").inner_text()


def test_sign_out_without_csrf_is_refused(page, web_world):
    web_world.sign_in(page, "examiner")
    r = page.request.post(f"{web_world.url}/signout", form={"nothing": "here"})
    assert r.status == 403
    page.goto(f"{web_world.url}/")
    assert "/signin" not in page.url  # still signed in


def test_next_never_leaves_the_site(page, web_world):
    page.goto(f"{web_world.url}/signin?next=//evil.example/")
    page.fill("#username", web_world.people["examiner"])
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.url.startswith(web_world.url)
