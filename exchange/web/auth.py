"""Sign-in for the web interface: session cookies and CSRF protection.

The cookie holds a random token (only its SHA-256 is stored); it is HttpOnly, SameSite=Lax,
and Secure when the exchange is served over TLS. Every form carries the session's CSRF token
(a pre-session token, double-submitted, on the sign-in form). A signed-in person acts as a
:class:`Principal` of their office, so the pages reach the data through the same services and
the same access policy as the API.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dossiers import users
from dossiers.errors import Forbidden

from ..access.principals import Principal
from ..deps import get_session

COOKIE = "exchange_session"
PRE_CSRF_COOKIE = "exchange_signin_csrf"


class SignInRequired(Exception):
    def __init__(self, next_url: str):
        self.next_url = next_url


class CsrfRefused(Forbidden):
    code, title = "csrf-refused", "The form's security token is missing or wrong"


@dataclass(frozen=True)
class SignedIn:
    """What pages need of the person: plain values, usable after the request's transaction."""

    id: str
    username: str
    display_name: str
    office_code: str | None
    roles: tuple[str, ...]


@dataclass
class WebContext:
    user: SignedIn
    csrf: str
    principal: Principal

    @property
    def is_admin(self) -> bool:
        return "admin" in self.user.roles

    @property
    def is_office_admin(self) -> bool:
        return "office-admin" in self.user.roles


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.public_url.startswith("https://")


def mark_web(request: Request) -> None:
    """Router dependency: errors on these routes are pages, not problem documents."""
    request.state.web = True


def web_user(*roles: str):
    """A signed-in person holding one of ``roles`` (any role when none are named)."""

    def dependency(request: Request, session: Annotated[Session, Depends(get_session, scope="function")]) -> WebContext:
        found = users.session_user(session, request.cookies.get(COOKIE))
        if found is None:
            raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        row, ws = found
        user = SignedIn(row.id, row.username, row.display_name, row.office_code, tuple(row.roles))
        ctx = WebContext(user, ws.csrf_token, Principal(f"user:{user.username}", user.office_code,
                                                        frozenset(user.roles)))
        request.state.web_context = ctx
        if roles and not set(user.roles) & set(roles):
            raise Forbidden("your account does not have access to this page")
        request.state.principal = ctx.principal
        return ctx

    dependency.__access__ = ("web", roles)  # type: ignore[attr-defined]
    return Depends(dependency)


async def check_csrf(request: Request, ctx: WebContext) -> dict:
    """The form's fields, after checking its CSRF token against the session's."""
    form = await request.form()
    token = form.get("csrf_token")
    if not isinstance(token, str) or not hmac.compare_digest(token, ctx.csrf):
        raise CsrfRefused("the form's security token is missing or wrong; reload the page and try again")
    return dict(form.multi_items())


def new_pre_session_token() -> str:
    return secrets.token_urlsafe(32)


def next_target(value: str | None) -> str:
    """Only local paths: a sign-in link must not bounce the browser to another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def signin_redirect(next_url: str) -> str:
    return f"/signin?next={quote(next_url, safe='')}"
