"""The API reference pages in a real browser whose network reaches the exchange only: Swagger
UI and ReDoc render every operation from the vendored assets, nothing is asked of another
host, and another site cannot frame them."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest


@pytest.fixture
def exchange_only(page, pg_stack):
    """The page's network limited to the exchange: any request for another host that the page's
    own policy did not stop first is recorded and aborted."""
    origin = urlsplit(pg_stack.url).netloc
    elsewhere: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc == origin:
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    page.context.route("**/*", route)
    return pg_stack, elsewhere


def operations(pg_stack) -> int:
    schema = httpx.get(f"{pg_stack.url}/openapi.json").json()
    return sum(1 for item in schema["paths"].values() for method in item if method != "parameters")


def test_swagger_ui_renders_every_operation_from_the_exchange_alone(page, exchange_only):
    from playwright.sync_api import expect

    stack, elsewhere = exchange_only
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.goto(f"{stack.url}/docs")
    page.wait_for_selector(".opblock-summary-path")
    expected = operations(stack)
    assert expected >= 40
    expect(page.locator(".opblock")).to_have_count(expected)
    assert page.locator(".opblock-summary-path", has_text="/v1/aspec-requests").count() >= 1
    # Try one out: the request goes to the exchange, and its answer shows.
    page.locator(".opblock-summary-path", has_text="/healthz").first.click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    page.locator(".live-responses-table tbody .response-col_status", has_text="200").wait_for()
    assert '"status"' in page.locator(".live-responses-table tbody .response-col_description").first.inner_text()
    assert elsewhere == [] and failed == []


def test_redoc_renders_every_operation_from_the_exchange_alone(page, exchange_only):
    from playwright.sync_api import expect

    stack, elsewhere = exchange_only
    blocked: list[str] = []
    page.on("requestfailed", lambda r: blocked.append(f"{r.url} {r.failure}"))
    page.goto(f"{stack.url}/redoc")
    expected = operations(stack)
    # (expect() polls from Playwright's own world: the page's policy forbids evaluating strings)
    expect(page.locator("[data-section-id^='tag/'][data-section-id*='/operation/']")).to_have_count(expected)
    page.get_by_placeholder("Search...").fill("aspec")  # the search runs in a worker of its own
    page.wait_for_selector("[data-role='search:results'] li")
    assert elsewhere == []
    # ReDoc's "API docs by Redocly" logo is the one thing it would fetch elsewhere: the page's
    # policy refuses it before any request leaves.
    assert all(m.startswith("https://cdn.redoc.ly/") and m.endswith(" csp") for m in blocked), blocked


def test_another_site_cannot_frame_the_reference(page, pg_stack):
    """A page of another origin framing /docs gets nothing, where a frameable answer of the same
    exchange (/healthz, the control) shows."""
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "frame" in m.text.lower() else None)
    page.set_content(f'<iframe id="ok" src="{pg_stack.url}/healthz"></iframe>'
                     f'<iframe id="docs" src="{pg_stack.url}/docs" width="800" height="600"></iframe>')
    page.frame_locator("#ok").locator("body", has_text="ok").wait_for()
    page.wait_for_timeout(1000)
    assert page.frame_locator("#docs").locator("#swagger-ui").count() == 0
    assert any("frame-ancestors" in m or "X-Frame-Options" in m for m in refused), refused
