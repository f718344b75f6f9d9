"""Sign-in, sign-out and the start page. Examiner and administrator pages live beside this
module; all of them reach data through the same services and access gate as the API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse

from dossiers import users

from ..access.ratelimit import rate_limited
from ..deps import SessionDep, public
from .auth import (
    COOKIE,
    PRE_CSRF_COOKIE,
    WebContext,
    check_csrf,
    mark_web,
    new_pre_session_token,
    next_target,
    secure_cookies,
    web_user,
)
from .render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_web)])


@router.get("/signin", dependencies=[Depends(public)])
def signin_form(request: Request, next: str | None = None):
    token = request.cookies.get(PRE_CSRF_COOKIE) or new_pre_session_token()
    response = page(request, "signin.html", csrf=token, next=next_target(next), ctx=None)
    response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request),
                        path="/signin", max_age=3600)
    return response


@router.post("/signin", dependencies=[Depends(public), rate_limited("signin")])
def signin(request: Request, session: SessionDep, username: Annotated[str, Form()] = "",
           password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
           next: Annotated[str, Form()] = "/"):
    import hmac

    expected = request.cookies.get(PRE_CSRF_COOKIE)
    if not expected or not csrf_token or not hmac.compare_digest(expected, csrf_token):
        token = new_pre_session_token()
        response = page(request, "signin.html", status_code=403, csrf=token, next=next_target(next), ctx=None,
                        username=username, error="The form expired or was not sent from this site; please try again.")
        response.set_cookie(PRE_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies(request),
                            path="/signin", max_age=3600)
        return response
    try:
        user = users.sign_in(session, username, password)
    except users.SignInRefused as exc:
        # The page is an answer, not an error: the request's session commits the failure count
        # and its audit entry.
        return page(request, "signin.html", status_code=401, csrf=expected, next=next_target(next), ctx=None,
                    username=username, error=str(exc))
    token, _ = users.open_session(session, user)
    response = RedirectResponse(next_target(next), status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="lax", secure=secure_cookies(request), path="/",
                        max_age=int(users.SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(PRE_CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
async def signout(request: Request, session: SessionDep, ctx: WebContext = web_user()):
    await check_csrf(request, ctx)
    users.close_session(session, request.cookies.get(COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def home(request: Request, ctx: WebContext = web_user()):
    if ctx.principal.office is None:
        return RedirectResponse("/admin", status_code=303)
    return page(request, "home.html")
