"""One table from domain errors to RFC 9457 problem responses. Domain code never raises
``HTTPException``; everything that reaches the client as an error passes through here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from crypto.errors import CryptoError
from dossiers import errors as de
from dossiers.storage import StorageError

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# Most specific first: the first matching class decides the status.
STATUS: list[tuple[type[Exception], int]] = [
    (de.BodyTooLarge, 413),
    (de.RequestTimeout, 408),
    (de.MultipartMalformed, 400),
    (de.ManifestMissing, 400),
    (de.ManifestMalformed, 400),
    (de.AlgorithmRefused, 400),
    (de.OfficeMismatch, 403),
    (de.DepositInProgress, 409),
    (de.DepositRefused, 422),
    (de.WebhookTargetRefused, 422),
    (de.TooManyRequests, 429),
    (de.Unauthenticated, 401),
    (de.Forbidden, 403),
    (de.NotFound, 404),
    (de.Conflict, 409),
    (de.InvalidRequest, 422),
    (de.StorageFailure, 503),
    (de.StoredObjectCorrupt, 500),
    (StorageError, 503),
]


def problem(status: int, code: str, title: str, detail: str | None = None, *, instance: str | None = None,
            headers: dict | None = None, **extra) -> JSONResponse:
    body = {"type": f"/problems/{code}", "title": title, "status": status, "code": code}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def status_of(exc: Exception) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _web_page(request: Request, status: int, title: str, detail: str):
    from .web.render import page

    return page(request, "error.html", status_code=status, title=title, detail=detail)


def answer(request: Request, status: int, code: str, title: str, detail: str | None):
    """An error for the one who asked: a page for the web interface, a problem for the API."""
    if getattr(request.state, "web", False):
        return _web_page(request, status, title, detail or title)
    return problem(status, code, title, detail, instance=request.url.path, request_id=_request_id(request))


def domain_problem(request: Request, exc: de.DomainError) -> JSONResponse:
    status = status_of(exc)
    if getattr(request.state, "web", False):
        response = _web_page(request, status, exc.title, exc.detail)
        if isinstance(exc, de.TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    headers = None
    if status == 401:
        headers = {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc.detail}"'}
    if isinstance(exc, de.TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"}
    extra = {k: v for k, v in (exc.extra or {}).items() if isinstance(v, str | int | list | dict)}
    return problem(status, exc.code, exc.title, exc.detail, instance=request.url.path, headers=headers,
                   errors=exc.errors, request_id=_request_id(request), **extra)


def install(app: FastAPI) -> None:
    from fastapi.responses import RedirectResponse

    from .web.auth import SignInRequired, signin_redirect

    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired):
        return RedirectResponse(signin_redirect(exc.next_url), status_code=303)

    @app.exception_handler(de.DomainError)
    async def _domain(request: Request, exc: de.DomainError):
        if exc.audit:
            from starlette.concurrency import run_in_threadpool

            from dossiers.audit import append_apart

            await run_in_threadpool(append_apart, request.app.state.session_factory, exc.audit)
        return domain_problem(request, exc)

    @app.exception_handler(de.StoredObjectCorrupt)
    async def _corrupt(request: Request, exc: de.StoredObjectCorrupt):
        from starlette.concurrency import run_in_threadpool

        from dossiers.retrieval import record_corruption

        if "sha256" in exc.extra:
            principal = getattr(request.state, "principal", None)
            await run_in_threadpool(
                record_corruption, request.app.state.session_factory, sha256=exc.extra["sha256"],
                dossier_id=exc.extra.get("dossier_id"), document_id=exc.extra.get("document_id"),
                reason=exc.extra.get("integrity_reason", "integrity check failed"),
                actor=principal.client_id if principal else None, request_id=_request_id(request))
        return answer(request, 500, exc.code, exc.title, exc.detail)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError):
        log.warning("storage error: %s", exc)
        return answer(request, 503, "storage-unavailable", "Document storage unavailable", str(exc))

    @app.exception_handler(CryptoError)
    async def _crypto(request: Request, exc: CryptoError):
        return answer(request, 422, exc.code, "Cryptographic check failed", str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [{"pointer": "/" + "/".join(str(p) for p in e.get("loc", ()) if p != "body"),
                   "detail": e.get("msg", "")} for e in exc.errors()]
        return problem(422, "validation-failed", "Request does not have the required shape",
                       "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors[:5]),
                       instance=request.url.path, errors=errors, request_id=_request_id(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if getattr(request.state, "web", False) or (exc.status_code == 404 and "text/html" in request.headers.get(
                "accept", "") and not request.url.path.startswith(("/v1", "/oauth", "/.well-known"))):
            return _web_page(request, exc.status_code, "Not found" if exc.status_code == 404 else "Request failed",
                             "There is nothing here, or nothing you may see.")
        codes = {404: ("not-found", "Not found"), 405: ("method-not-allowed", "Method not allowed")}
        code, title = codes.get(exc.status_code, ("http-error", "Request failed"))
        return problem(exc.status_code, code, title, str(exc.detail) if exc.detail else None,
                       instance=request.url.path, headers=getattr(exc, "headers", None),
                       request_id=_request_id(request))

    @app.exception_handler(sa_exc.DataError)
    async def _data(request: Request, exc: sa_exc.DataError):
        # The last line behind exchange/guards.py: PostgreSQL refuses NUL in text ("cannot
        # contain NUL") and in jsonb ("\u0000 cannot be converted"), wherever a value came from.
        if "NUL" in str(exc.orig) or "\\u0000" in str(exc.orig):
            return answer(request, 400, "nul-character", "Request holds a NUL character",
                          "a value holds a NUL character (U+0000), which the exchange does not accept")
        return await _internal(request, exc)

    @app.exception_handler(sa_exc.IntegrityError)
    async def _integrity(request: Request, exc: sa_exc.IntegrityError):
        # Two requests raced to create one thing: each service looks first and answers 409 for
        # what exists; the loser of the race meets the unique constraint instead, and answers
        # the same (its transaction is rolled back, nothing of it kept).
        orig = exc.orig
        if getattr(orig, "sqlstate", None) not in ("23505", "23503") and not any(
                m in str(orig) for m in ("UNIQUE constraint failed", "FOREIGN KEY constraint failed")):
            return await _internal(request, exc)  # NOT NULL, CHECK: a bug, not a race
        log.info("constraint on %s %s: %s", request.method, request.url.path, orig)
        return answer(request, 409, "conflict", "Conflict",
                      "the same thing was created by a request that was processed at the same time; "
                      "read it back, or retry")

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, 500, "internal-error", "Internal error",
                      "The exchange failed to process the request; nothing was changed.")
