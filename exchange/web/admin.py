"""Administrator pages: offices, keys, clients, people, agreements, webhooks, audit, statistics.

The exchange's admin (role ``admin``, no office) manages everything; an office-admin manages
its own office only. Access is declared by the dependencies below, never by an ``if`` in a
handler. Pages reach data through the same services as the API; every change is a POST form
carrying the session's CSRF token and answers with a redirect (303) and a flash message, except
those that show a secret once (a new client, a client's new secret, a new webhook), which answer
with that page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from urllib.parse import quote, unquote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from crypto.errors import AuditChainBroken, CryptoError
from crypto.keys import OFFICE_ALGORITHMS, thumbprint
from dossiers import agreements, aspec, audit, registry, stats, subscriptions, users
from dossiers.aftercommit import after_commit
from dossiers.db import utcnow
from dossiers.errors import Conflict, InvalidRequest, NotFound
from dossiers.policy import agreement_facts
from dossiers.schemas import DOCUMENT_TYPES
from dossiers.scope import Scope
from dossiers.vocab import AuditAction, AuditOutcome

from ..access.principals import ADMIN, OFFICE_ADMIN
from ..deps import RequestIdDep, SessionDep, SettingsDep, office_not_found
from ..schemas import KeyCreate, OfficeCreate
from .auth import WebContext, check_csrf, mark_web, secure_cookies, web_user
from .render import page

router = APIRouter(include_in_schema=False, dependencies=[Depends(mark_web)])

FLASH = "exchange_admin_flash"
# Refusals a form can recover from: shown on the form's page. Forbidden is not among them:
# it answers with the 403 page like any other refused access.
FORM_ERRORS = (InvalidRequest, Conflict, NotFound)
AUDIT_PAGE = 50
# The audit page's filters offer every value there is.
AUDIT_OUTCOMES = tuple(AuditOutcome)
AUDIT_ACTIONS = tuple(sorted(AuditAction))
DELIVERY_STATUSES = ("pending", "delivered", "dead")
SETTINGS = (("requires_cct", "Require a claim correspondence table (CCT) with ASPEC requests"),
            ("accepts_written_opinion", "Accept written opinions in place of search and examination reports"))
STATS_MONTHS = 12


# --- access -----------------------------------------------------------------------------------

AnyAdmin = web_user(ADMIN, OFFICE_ADMIN)
ExchangeAdmin = web_user(ADMIN)


def office_scope(request: Request, ctx: WebContext = AnyAdmin) -> WebContext:
    """The exchange's admin, or an office-admin of the office named by the path's ``code``.
    Another office's pages read as those of an office that does not exist."""
    code = request.path_params.get("code")
    if not ctx.principal.is_admin and ctx.principal.office != code:
        raise office_not_found(code)
    return ctx


office_scope.__access__ = ("web-office", (ADMIN, OFFICE_ADMIN))  # type: ignore[attr-defined]
OfficeAdmin = Depends(office_scope)


@dataclass
class Posted:
    """A form whose CSRF token matched the session's, and who sent it."""

    ctx: WebContext
    form: FormData

    @property
    def actor(self) -> str:
        return self.ctx.principal.client_id

    def text(self, name: str) -> str:
        value = self.form.get(name)
        return value.strip() if isinstance(value, str) else ""

    def texts(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.getlist(name) if isinstance(v, str) and v.strip()]

    def flag(self, name: str) -> bool:
        return self.text(name) in ("on", "true", "1", "yes")


def posted(access):
    """A POST form checked against the session's CSRF token, for callers allowed by ``access``.
    A dependency, so the handlers stay synchronous and run off the event loop."""

    async def dependency(request: Request, ctx: WebContext = access) -> Posted:
        await check_csrf(request, ctx)
        return Posted(ctx, await request.form())

    return Depends(dependency)


# --- responses --------------------------------------------------------------------------------

def _flash_of(request: Request) -> list[dict]:
    raw = request.cookies.get(FLASH)
    if not raw:
        return []
    try:
        kind, text = json.loads(unquote(raw))
    except (ValueError, TypeError, RecursionError):  # a crafted cookie: no message
        return []
    return [{"kind": kind if kind in ("ok", "error") else "info", "text": str(text)[:600]}]


def _page(request: Request, name: str, status_code: int = 200, **context):
    """A page with the flash message the previous redirect left (a cookie our own responses set,
    so a crafted link cannot put words on the page)."""
    messages = _flash_of(request)
    response = page(request, name, status_code=status_code, messages=messages, **context)
    if request.cookies.get(FLASH):
        response.delete_cookie(FLASH, path="/admin")
    return response


def _redirect(request: Request, url: str, text: str, kind: str = "ok") -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(FLASH, quote(json.dumps([kind, text[:600]])), httponly=True, samesite="lax",
                        secure=secure_cookies(request), path="/admin", max_age=120)
    return response


def _refused(request: Request, session, url: str, exc: Exception) -> RedirectResponse:
    # The request's unit of work would commit whatever the refused service flushed before it
    # raised; a refused form must leave nothing behind.
    session.rollback()
    if isinstance(exc, ValidationError):
        text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
    else:
        text = getattr(exc, "detail", None) or str(exc)
    return _redirect(request, url, f"Not done: {text}", "error")


def _day(value: str, field: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise InvalidRequest(f"{field} must be a date (YYYY-MM-DD)") from None


# --- overview and offices ---------------------------------------------------------------------

def _visible_offices(session, ctx: WebContext) -> list:
    if ctx.principal.is_admin:
        return registry.list_offices(session)
    return [registry.get_office(session, ctx.principal.scope.code)]


@router.get("/admin")
def overview(request: Request, session: SessionDep, ctx: WebContext = AnyAdmin):
    return _page(request, "admin_overview.html", offices=_visible_offices(session, ctx))


@router.get("/admin/offices")
def offices_page(request: Request, session: SessionDep, ctx: WebContext = AnyAdmin):
    return _page(request, "admin_offices.html", offices=_visible_offices(session, ctx))


@router.post("/admin/offices")
def create_office(request: Request, session: SessionDep, rid: RequestIdDep, form: Posted = posted(ExchangeAdmin)):
    try:
        body = OfficeCreate(code=form.text("code").upper(), name=form.text("name"), roles=form.texts("roles"))
        registry.create_office(session, code=body.code, name=body.name, roles=body.roles, settings={},
                               actor=form.actor, request_id=rid)
    except (ValidationError, *FORM_ERRORS) as exc:
        return _refused(request, session, "/admin/offices", exc)
    return _redirect(request, f"/admin/offices/{body.code}", f"Office {body.code} registered.")


@router.get("/admin/offices/{code}")
def office_page(code: str, request: Request, session: SessionDep, ctx: WebContext = OfficeAdmin):
    office = registry.get_office(session, code)
    stored = (office.settings or {}).get("aspec", {})
    effective = aspec.office_settings(office)
    settings = [{"name": n, "label": label, "stored": stored.get(n), "effective": effective[n]}
                for n, label in SETTINGS]
    keys = registry.list_keys(session, code)
    now = utcnow()
    return _page(request, "admin_office.html", office=office, settings=settings, now=now,
                 keys=[{"key": k, "valid": k.valid_at(now)} for k in keys],
                 live_keys=[k for k in keys if k.revoked_at is None],
                 clients=registry.list_clients(session, code), people=users.users_of(session, code),
                 algorithms=OFFICE_ALGORITHMS, client_roles=registry.CLIENT_ROLES, user_roles=users.USER_ROLES)


@router.post("/admin/offices/{code}/settings")
def update_settings(code: str, request: Request, session: SessionDep, rid: RequestIdDep,
                    form: Posted = posted(ExchangeAdmin)):
    choice = {"default": None, "yes": True, "no": False}
    try:
        wanted = {}
        for name, _label in SETTINGS:
            if form.text(name) not in choice:
                raise InvalidRequest(f"{name} is one of default, yes, no")
            wanted[f"aspec.{name}"] = choice[form.text(name)]
        registry.update_office(session, code, name=None, roles=None, settings=wanted, actor=form.actor,
                               request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, f"/admin/offices/{code}", exc)
    return _redirect(request, f"/admin/offices/{code}#settings", f"Settings of {code} saved.")


def _new_key(session, code: str, form: Posted, rid: str | None):
    pem, alg = form.text("public_key_pem"), form.text("alg")
    kid = form.text("kid")
    if not kid and pem:
        try:
            kid = thumbprint(pem, alg)  # the RFC 7638 default, as `exchange office keygen` names keys
        except (CryptoError, ValueError) as exc:
            raise InvalidRequest(f"the public key was not accepted: {exc}") from None
    body = KeyCreate(kid=kid, alg=alg, public_key_pem=pem,
                     not_after=_day(form.text("not_after"), "the key's last day"))
    return registry.register_key(session, code, kid=body.kid, alg=body.alg, public_key_pem=body.public_key_pem,
                                 not_before=None, not_after=body.not_after, actor=form.actor, request_id=rid)


@router.post("/admin/offices/{code}/keys")
def register_key(code: str, request: Request, session: SessionDep, rid: RequestIdDep,
                 form: Posted = posted(OfficeAdmin)):
    try:
        key = _new_key(session, code, form, rid)
    except (ValidationError, *FORM_ERRORS) as exc:
        return _refused(request, session, f"/admin/offices/{code}#keys", exc)
    return _redirect(request, f"/admin/offices/{code}#keys", f"Key {key.kid} ({key.alg}) registered.")


@router.post("/admin/offices/{code}/keys/rotate")
def rotate_key(code: str, request: Request, session: SessionDep, rid: RequestIdDep,
               form: Posted = posted(OfficeAdmin)):
    """Register the new key and revoke the old one in one transaction: never a moment with neither."""
    try:
        old = registry.get_key(session, code, form.text("old_kid"))
        key = _new_key(session, code, form, rid)
        registry.revoke_key(session, code, old.kid, revoked_at=None,
                            reason=form.text("reason")[:200] or f"rotated to {key.kid}", actor=form.actor,
                            request_id=rid)
    except (ValidationError, *FORM_ERRORS) as exc:
        return _refused(request, session, f"/admin/offices/{code}#keys", exc)
    return _redirect(request, f"/admin/offices/{code}#keys", f"Key {old.kid} rotated to {key.kid}.")


@router.post("/admin/offices/{code}/keys/revoke")
def revoke_key(code: str, request: Request, session: SessionDep, rid: RequestIdDep,
               form: Posted = posted(OfficeAdmin)):
    try:
        key = registry.revoke_key(session, code, form.text("kid"), revoked_at=None,
                                  reason=form.text("reason")[:200] or None, actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, f"/admin/offices/{code}#keys", exc)
    return _redirect(request, f"/admin/offices/{code}#keys", f"Key {key.kid} revoked.")


@router.post("/admin/offices/{code}/clients")
def create_client(code: str, request: Request, session: SessionDep, rid: RequestIdDep,
                  form: Posted = posted(OfficeAdmin)):
    try:
        client, secret = registry.create_client(session, office_code=code, roles=form.texts("roles"),
                                                name=form.text("name")[:200] or f"{code} system",
                                                actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, f"/admin/offices/{code}#clients", exc)
    # The secret is shown on this response only (it is stored as a hash): no redirect to lose it.
    return _page(request, "admin_secret.html", office=code, kind="client",
                 title=f"Client {client.name} created", back=f"/admin/offices/{code}#clients",
                 fields=[("Client id", client.client_id), ("Client secret", secret),
                         ("Roles", ", ".join(client.roles))])


@router.post("/admin/offices/{code}/clients/{client_id}/secret")
def rotate_client_secret(code: str, client_id: str, request: Request, session: SessionDep, rid: RequestIdDep,
                         form: Posted = posted(OfficeAdmin)):
    try:
        client, secret = registry.rotate_client_secret(session, code, client_id, actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, f"/admin/offices/{code}#clients", exc)
    return _page(request, "admin_secret.html", office=code, kind="client",
                 title=f"New secret for client {client.name}", back=f"/admin/offices/{code}#clients",
                 fields=[("Client id", client.client_id), ("Client secret", secret)],
                 note="The old secret, and every token got with it, stopped working.")


CLIENT_CHANGES = {
    "disable": (registry.disable_client, "is disabled: it gets no token, and the tokens it held stopped working"),
    "enable": (registry.enable_client, "is enabled: its secret gets tokens again"),
}


@router.post("/admin/offices/{code}/clients/{client_id}/{change}")
def change_client(code: str, client_id: str, change: str, request: Request, session: SessionDep,
                  rid: RequestIdDep, form: Posted = posted(OfficeAdmin)):
    back = f"/admin/offices/{code}#clients"
    try:
        if change not in CLIENT_CHANGES:
            raise NotFound(f"no action {change}")
        service, outcome = CLIENT_CHANGES[change]
        client = service(session, code, client_id, actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    return _redirect(request, back, f"Client {client.name} ({client.client_id}) {outcome}.")


def _create_person(request: Request, session, form: Posted, office: str | None, roles: list[str], back: str):
    try:
        user = users.create_user(session, username=form.text("username"), display_name=form.text("display_name"),
                                 office=office, roles=roles, password=form.text("password"),
                                 email=form.text("email") or None, actor=form.actor)
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    return _redirect(request, back,
                     f"{user.display_name} ({user.username}) can now sign in as {', '.join(user.roles)}.")


def _change_person(request: Request, session, form: Posted, office: str | None, user_id: str, change: str,
                   back: str):
    """Disable, enable, unlock a person or set their password, within ``office`` (None: the
    exchange's admins); the redirect says what was done."""
    try:
        if change == "disable":
            user = users.disable_user(session, office, user_id, actor=form.actor, acting_user_id=form.ctx.user.id)
            done = "is disabled and signed out everywhere"
        elif change == "enable":
            user = users.enable_user(session, office, user_id, actor=form.actor)
            done = "is enabled and can sign in again"
        elif change == "unlock":
            user = users.unlock_user(session, office, user_id, actor=form.actor)
            done = "is unlocked and can sign in again"
        elif change == "password":
            user = users.reset_password(session, office, user_id, form.text("password"), actor=form.actor)
            done = "has a new password (give it to them by another channel) and was signed out everywhere"
        else:
            raise NotFound(f"no action {change}")
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    return _redirect(request, back, f"{user.display_name} ({user.username}) {done}.")


@router.post("/admin/offices/{code}/users")
def create_user(code: str, request: Request, session: SessionDep, form: Posted = posted(OfficeAdmin)):
    return _create_person(request, session, form, code, form.texts("roles"), f"/admin/offices/{code}#people")


@router.post("/admin/offices/{code}/users/{user_id}/{change}")
def change_user(code: str, user_id: str, change: str, request: Request, session: SessionDep,
                form: Posted = posted(OfficeAdmin)):
    return _change_person(request, session, form, code, user_id, change, f"/admin/offices/{code}#people")


# --- the exchange's administrators ------------------------------------------------------------

@router.get("/admin/people")
def people_page(request: Request, session: SessionDep, ctx: WebContext = ExchangeAdmin):
    return _page(request, "admin_people.html", people=users.exchange_admins(session), now=utcnow())


@router.post("/admin/people")
def create_admin(request: Request, session: SessionDep, form: Posted = posted(ExchangeAdmin)):
    return _create_person(request, session, form, None, [ADMIN], "/admin/people")


@router.post("/admin/people/{user_id}/{change}")
def change_admin(user_id: str, change: str, request: Request, session: SessionDep,
                 form: Posted = posted(ExchangeAdmin)):
    return _change_person(request, session, form, None, user_id, change, "/admin/people")


# --- webhooks ---------------------------------------------------------------------------------

@router.get("/admin/offices/{code}/webhooks")
def webhooks_page(code: str, request: Request, session: SessionDep, status: str | None = None,
                  ctx: WebContext = OfficeAdmin):
    office = registry.get_office(session, code)
    status = status if status in DELIVERY_STATUSES else None
    return _page(request, "admin_webhooks.html", office=office, status=status, statuses=DELIVERY_STATUSES,
                 topics=subscriptions.TOPICS, subs=subscriptions.list_subscriptions(session, code),
                 deliveries=subscriptions.deliveries(session, code, status=status),
                 dead=subscriptions.deliveries(session, code, status="dead"))


@router.post("/admin/offices/{code}/webhooks")
def subscribe(code: str, request: Request, session: SessionDep, settings: SettingsDep, rid: RequestIdDep,
              form: Posted = posted(OfficeAdmin)):
    back = f"/admin/offices/{code}/webhooks"
    try:
        registry.get_office(session, code)
        url = form.text("url")
        if not 8 <= len(url) <= 2000:
            raise InvalidRequest("give the full https:// address of the receiver")
        sub = subscriptions.subscribe(session, code, url=url, events=form.texts("events"),
                                      description=form.text("description")[:200] or None,
                                      allow=settings.webhook_allow_hosts, actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    return _page(request, "admin_secret.html", office=code, kind="webhook",
                 title="Webhook subscribed", back=back,
                 fields=[("URL", sub.url), ("Events", ", ".join(sub.events) or "every event"),
                         ("Signing secret", sub.secret)])


@router.post("/admin/offices/{code}/webhooks/{webhook_id}/status")
def webhook_status(code: str, webhook_id: str, request: Request, session: SessionDep,
                   form: Posted = posted(OfficeAdmin)):
    back = f"/admin/offices/{code}/webhooks"
    try:
        wanted = form.text("status")
        if wanted not in ("active", "disabled"):
            raise InvalidRequest("a subscription is enabled (active) or disabled")
        sub = subscriptions.set_status(session, code, webhook_id, wanted, actor=form.actor)
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    return _redirect(request, back, f"Webhook to {sub.url} is now {sub.status}.")


@router.post("/admin/offices/{code}/deliveries/{delivery_id}/redeliver")
def redeliver(code: str, delivery_id: str, request: Request, session: SessionDep,
              form: Posted = posted(OfficeAdmin)):
    back = f"/admin/offices/{code}/webhooks"
    try:
        d = subscriptions.redeliver(session, code, delivery_id, actor=form.actor)
    except FORM_ERRORS as exc:
        return _refused(request, session, back, exc)
    after_commit(session, partial(request.app.state.relay.enqueue, "notify.deliver_webhook", [d.id]))
    return _redirect(request, back, f"Delivery {d.id} queued again under the same webhook-id.")


# --- agreements -------------------------------------------------------------------------------

@router.get("/admin/agreements")
def agreements_page(request: Request, session: SessionDep, ctx: WebContext = AnyAdmin):
    return _page(request, "admin_agreements.html", agreements=agreements.list_for(session, ctx.principal.scope),
                 offices=registry.list_offices(session) if ctx.principal.is_admin else [],
                 programs=agreements.PROGRAMS, document_types=DOCUMENT_TYPES, today=utcnow().date().isoformat(),
                 transitions=agreements.TRANSITIONS)


@router.post("/admin/agreements")
def create_agreement(request: Request, session: SessionDep, rid: RequestIdDep, form: Posted = posted(ExchangeAdmin)):
    try:
        name = form.text("name")
        if not 1 <= len(name) <= 200:
            raise InvalidRequest("give the agreement a name (up to 200 characters)")
        # The service checks the rest (programme, members, document types, window) and says what is wrong.
        a = agreements.create(session, name=name, program=form.text("program"), members=form.texts("members"),
                              document_types=form.texts("document_types"),
                              valid_from=_day(form.text("valid_from"), "the first day") or utcnow(),
                              valid_until=_day(form.text("valid_until"), "the end"),
                              require_corresponding=form.flag("require_corresponding"),
                              share_unpublished=form.flag("share_unpublished"), actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, "/admin/agreements", exc)
    return _redirect(request, "/admin/agreements", f"Agreement {a.name} created among {', '.join(a.member_codes)}.")


@router.post("/admin/agreements/{agreement_id}/{action}")
def transition_agreement(agreement_id: str, action: str, request: Request, session: SessionDep,
                         rid: RequestIdDep, form: Posted = posted(ExchangeAdmin)):
    try:
        if action not in agreements.TRANSITIONS:
            raise NotFound(f"no action {action}")
        a = agreements.transition(session, agreement_id, action, actor=form.actor, request_id=rid)
    except FORM_ERRORS as exc:
        return _refused(request, session, "/admin/agreements", exc)
    return _redirect(request, "/admin/agreements", f"Agreement {a.name} is now {a.status}; "
                     "this takes effect on the very next request.")


# --- audit ------------------------------------------------------------------------------------

def _chain_watch(request: Request) -> audit.ChainWatch:
    """This process's view of the chain: each look verifies only what was appended since the
    last one (``exchange audit verify`` walks the whole chain)."""
    watch = getattr(request.app.state, "audit_chain_watch", None)
    if watch is None:
        watch = request.app.state.audit_chain_watch = audit.ChainWatch()
    return watch


@router.get("/admin/audit")
def audit_page(request: Request, session: SessionDep, action: str | None = None, outcome: str | None = None,
               office: str | None = None, before: str | None = None, limit: str | None = None,
               ctx: WebContext = AnyAdmin):
    action, outcome, office = action or None, outcome or None, (office or "").upper() or None
    before_seq = int(before) if before and before.isdigit() else None
    size = min(max(int(limit), 10), 200) if limit and limit.isdigit() else AUDIT_PAGE
    scope = ctx.principal.scope
    if not scope.is_everything:
        office = scope.code  # an office-admin reads its own office's entries only
    rows = audit.page(session, scope=scope, office=office, action=action, outcome=outcome, before_seq=before_seq,
                      limit=size + 1)
    older = None
    if len(rows) > size:
        rows = rows[:size]
        query: dict[str, str | int] = {k: v for k, v in (("action", action), ("outcome", outcome), ("office", office))
                                       if v}
        if size != AUDIT_PAGE:
            query["limit"] = size
        older = "/admin/audit?" + urlencode({**query, "before": rows[-1].seq})
    try:
        chain: dict[str, object] = {"ok": True, "count": _chain_watch(request).check(session).count}
    except AuditChainBroken as exc:
        chain = {"ok": False, "seq": exc.seq, "reason": exc.reason}
    return _page(request, "admin_audit.html", rows=rows, chain=chain, older=older, paged=before_seq is not None,
                 action=action, outcome=outcome, office=office, actions=AUDIT_ACTIONS, outcomes=AUDIT_OUTCOMES,
                 offices=registry.list_offices(session) if ctx.principal.is_admin else [])


# --- statistics -------------------------------------------------------------------------------

def _chart(key: str, title: str, months: list[date], values: list[int]) -> dict:
    """Geometry of a bar chart drawn as SVG by the template (no script, no library)."""
    width, height, left, top, bottom = 360, 180, 34, 12, 34
    top_value = max(values) if values and max(values) > 0 else 1
    plot_h, slot = height - top - bottom, (width - left - 8) / max(1, len(values))
    bars = []
    for i, (month, value) in enumerate(zip(months, values)):
        h = round(plot_h * value / top_value, 1)
        bars.append({"x": round(left + i * slot + slot * 0.15, 1), "w": round(slot * 0.7, 1), "h": h,
                     "y": round(top + plot_h - h, 1), "value": value, "month": month,
                     "label": month.strftime("%b"), "cx": round(left + i * slot + slot / 2, 1)})
    return {"id": key, "title": title, "bars": bars, "max": top_value, "width": width, "height": height,
            "left": left, "top": top, "base": height - bottom, "total": sum(values)}


def _coverage(session, scope: Scope, codes: list[str]) -> tuple[list[str], dict]:
    """Which office's documents of which types each office may read, from the agreements in force."""
    now = utcnow()
    cells: dict[tuple[str, str], set[str]] = {}
    in_force = [a for a in agreements.list_for(session, scope) if agreement_facts(a).in_force(now)]
    for a in in_force:
        for owner in a.member_codes:
            for reader in a.member_codes:
                if owner != reader:
                    cells.setdefault((owner, reader), set()).update(a.document_types)
    if not scope.is_everything:
        codes = sorted({scope.code, *(c for pair in cells for c in pair)})
    return codes, {pair: sorted(types) for pair, types in cells.items()}


@router.get("/admin/stats")
def stats_page(request: Request, session: SessionDep, ctx: WebContext = AnyAdmin):
    scope = ctx.principal.scope
    last = stats.month_start(utcnow())
    months = [stats.add_months(last, i - STATS_MONTHS + 1) for i in range(STATS_MONTHS)]
    rows = stats.summary(session, scope=scope, since=months[0])
    codes = [o.code for o in registry.list_offices(session)] if scope.is_everything else [scope.code]

    def series(office: str, counter: str, own: bool) -> list[int]:
        return [sum(r[counter] for r in rows if r["office"] == office and r["month"] == m
                    and (r["partner"] is None) == own) for m in months]

    deposits = [_chart(f"dep-{c}", f"{c}: deposits", months, series(c, "deposits", True)) for c in codes]
    accesses = [_chart(f"acc-{c}", f"{c}: partners' reads of its dossiers", months, series(c, "accesses", False))
                for c in codes]
    matrix_codes, cells = _coverage(session, scope, codes)
    return _page(request, "admin_stats.html", deposits=deposits, accesses=accesses, months=months,
                 totals=stats.totals(rows), matrix_codes=matrix_codes, cells=cells, rolled=bool(rows))
