"""The FastAPI application factory."""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import event as sa_event
from sqlalchemy.orm import sessionmaker
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dossiers import signing_keys
from dossiers.db import make_engine, make_session_factory
from dossiers.models import OutboxEvent
from dossiers.storage import BlobStore, store_from_url
from workers.app import broker_ping, create_celery, prepare_broker

from . import errors, metrics, openapi
from .access.auth import TokenService
from .access.ratelimit import RateLimits
from .guards import InputGuard
from .logs import request_id as request_id_var
from .relay import Relay
from .routes import (
    access,
    agreements,
    applications,
    aspec,
    audit,
    dossiers,
    health,
    oauth,
    offices,
    outbox,
    stats,
    watches,
    webhooks,
)
from .settings import Settings
from .timeouts import BodyTimeouts

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, store: BlobStore | None = None,
               session_factory: sessionmaker | None = None, extra_routers: tuple = ()) -> FastAPI:
    settings = settings or Settings.from_env()
    engine = session_factory.kw["bind"] if session_factory is not None else make_engine(settings.database_url)
    session_factory = session_factory or make_session_factory(engine)
    store = store or store_from_url(settings.storage_url)

    celery = create_celery(settings.broker_url)
    relay = Relay(session_factory, celery, republish_after=timedelta(seconds=settings.outbox_republish_seconds))
    relay.install()
    _stamp_outbox_events(session_factory)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.ensure_ready()
        prepare_broker(settings.broker_url)
        with session_factory.begin() as s:
            signing_keys.current(s)  # the first start creates the exchange's signing key
            signing_keys.webhook_key(s)
        relay.start()
        try:
            yield
        finally:
            relay.stop()

    app = FastAPI(
        title="Patent examination worksharing exchange",
        version="1.0.0",
        description="Signed search and examination dossiers shared among patent offices under their agreements.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # served by web/docs.py with vendored assets, not from a CDN
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.store = store
    app.state.tokens = TokenService(settings, session_factory)
    app.state.rate_limits = RateLimits(settings)
    app.state.broker_ping = lambda: broker_ping(settings.broker_url)
    app.state.celery = celery
    app.state.relay = relay

    app.add_middleware(InputGuard)  # inside RequestContext: its refusals carry the request id
    app.add_middleware(BodyTimeouts)  # outside the others but RequestContext: their body reads are limited too
    app.add_middleware(RequestContext)
    errors.install(app)
    openapi.install(app)  # documents the problem responses errors.install gives
    for module in (health, oauth, offices, applications, agreements, dossiers, aspec, access, audit, stats, webhooks,
                   watches, outbox):
        app.include_router(module.router)
    from fastapi.staticfiles import StaticFiles

    # Imported plainly: a page module that fails to import stops the start, it does not
    # quietly take /admin or the examiner's pages away.
    from .web import admin as web_admin
    from .web import docs as web_docs
    from .web import examiner as web_examiner
    from .web import pages as web_pages
    from .web.render import HERE as WEB_HERE

    for web_module in (web_pages, web_docs, web_examiner, web_admin):
        app.include_router(web_module.router)
    app.mount("/static", StaticFiles(directory=str(WEB_HERE / "static")), name="static")
    app.include_router(metrics.router)
    for router in extra_routers:
        app.include_router(router)
    return app


def _stamp_outbox_events(session_factory: sessionmaker) -> None:
    """Outbox events written while a request is served carry its id, whichever session wrote
    them: ``outbox.emit`` reads the id from ``session.info``, which only the request's own session
    holds, and a deposit records its dossier in a session of its own. The relay publishes each
    event under its id, so the worker's lines about it name the request."""

    @sa_event.listens_for(session_factory, "before_flush")
    def _before_flush(session, _context, _instances) -> None:
        rid = request_id_var.get()
        if rid is None:
            return
        for obj in session.new:
            if isinstance(obj, OutboxEvent) and obj.request_id is None:
                obj.request_id = rid


class RequestContext:
    """Every HTTP request gets an id (the caller's ``X-Request-Id`` if it is a sane one), held in
    ``request.state.request_id`` for the audit log and problem responses, and in the logging
    context variable for every log line written while the request is served; the response
    carries it back. The request is counted and timed for ``/metrics`` by its route template.

    A plain ASGI middleware rather than ``@app.middleware("http")``: the id must stay set, and
    the clock running, until the last byte of a streamed document has gone out, and uvicorn's
    access line (written when the response starts) must see the id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = Headers(scope=scope).get("x-request-id")
        if not rid or len(rid) > 64 or not rid.isascii() or not rid.replace("-", "").isalnum():
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500  # unless a response starts: an exception escaped to Starlette's last resort

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = rid
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        token = request_id_var.set(rid)
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_headers)
        except BaseException:
            # Left set on purpose: Starlette's outermost handler logs the exception after this
            # returns, and that line should name the request. The context is this request's own
            # (the server runs each request in a task of its own), so nothing leaks.
            raise
        else:
            request_id_var.reset(token)
        finally:
            route = scope.get("route")
            metrics.http_request(scope["method"], getattr(route, "path", None) or "unmatched", status,
                                 time.perf_counter() - start)
