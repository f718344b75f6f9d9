"""Offices, their keys and clients, and applications: the registry behind the admin API.

Services flush, never commit: the caller's unit of work owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from crypto import secrets
from crypto.errors import KeyInvalid
from crypto.keys import normalise_public_pem

from . import audit, numbers
from .db import utcnow
from .errors import Conflict, InvalidRequest, KeyRejected, NotFound, SelfLockout
from .models import Application, Client, CorrespondenceKey, Office, OfficeKey, PriorityClaim
from .vocab import AuditAction, AuditOutcome, ClientRole

CLIENT_ROLES = tuple(ClientRole)
ADMIN_ROLE = "admin"


def citation_key(cited: str) -> str:
    return re.sub(r"[^0-9A-Z]", "", cited.upper())[:100] or cited[:100]


# --- offices ---------------------------------------------------------------------------------

def create_office(s: Session, *, code: str, name: str, roles: Sequence[str], settings: dict | None,
                  actor: str, request_id: str | None = None) -> Office:
    if s.get(Office, code) is not None:
        raise Conflict(f"office {code} is already registered")
    office = Office(code=code, name=name, roles=sorted(set(roles)), settings=settings or {})
    s.add(office)
    s.flush()
    audit.append(s, action=AuditAction.OFFICE_CREATE, outcome=AuditOutcome.OK, actor=actor, office=code, subject=code,
                 detail={"name": name, "roles": office.roles}, request_id=request_id)
    return office


def get_office(s: Session, code: str) -> Office:
    office = s.get(Office, code)
    if office is None:
        raise NotFound(f"no office {code}")
    return office


def list_offices(s: Session) -> list[Office]:
    return list(s.scalars(select(Office).order_by(Office.code)))


# --- keys ------------------------------------------------------------------------------------

def register_key(s: Session, office_code: str, *, kid: str, alg: str, public_key_pem: str,
                 not_before: datetime | None, not_after: datetime | None, actor: str,
                 request_id: str | None = None) -> OfficeKey:
    get_office(s, office_code)
    if not_before and not_after and not_after <= not_before:
        raise InvalidRequest("not_after must be later than not_before")
    try:
        pem = normalise_public_pem(public_key_pem, alg)
    except KeyInvalid as exc:
        raise KeyRejected(str(exc)) from None
    if s.scalars(select(OfficeKey).where(OfficeKey.office_code == office_code, OfficeKey.kid == kid)).first():
        raise Conflict(f"office {office_code} already has a key {kid!r}; keys are never replaced, register a new kid")
    key = OfficeKey(office_code=office_code, kid=kid, alg=alg, public_key_pem=pem,
                    not_before=not_before, not_after=not_after)
    s.add(key)
    s.flush()
    audit.append(s, action=AuditAction.KEY_REGISTER, outcome=AuditOutcome.OK,
                 actor=actor, office=office_code, subject=kid,
                 detail={"alg": alg, "not_before": not_before and not_before.isoformat(),
                         "not_after": not_after and not_after.isoformat()}, request_id=request_id)
    return key


def get_key(s: Session, office_code: str, kid: str) -> OfficeKey:
    key = s.scalars(select(OfficeKey).where(OfficeKey.office_code == office_code, OfficeKey.kid == kid)).first()
    if key is None:
        raise NotFound(f"office {office_code} has no key {kid!r}")
    return key


def list_keys(s: Session, office_code: str) -> list[OfficeKey]:
    get_office(s, office_code)
    return list(s.scalars(select(OfficeKey).where(OfficeKey.office_code == office_code).order_by(OfficeKey.id)))


def revoke_key(s: Session, office_code: str, kid: str, *, revoked_at: datetime | None, reason: str | None,
               actor: str, request_id: str | None = None) -> OfficeKey:
    key = get_key(s, office_code, kid)
    when = revoked_at or utcnow()
    if key.revoked_at is not None and key.revoked_at <= when:
        return key  # already revoked from an earlier time: revocation only moves earlier
    key.revoked_at = when
    key.revocation_reason = reason
    s.flush()
    audit.append(s, action=AuditAction.KEY_REVOKE, outcome=AuditOutcome.OK,
                 actor=actor, office=office_code, subject=kid,
                 detail={"revoked_at": when.isoformat(), "reason": reason}, request_id=request_id)
    return key


# --- clients ---------------------------------------------------------------------------------

def create_client(s: Session, *, office_code: str | None, roles: list[str], name: str, actor: str,
                  request_id: str | None = None) -> tuple[Client, str]:
    if office_code is not None:
        get_office(s, office_code)
        bad = sorted(set(roles) - set(CLIENT_ROLES))
        if bad or not roles:
            raise InvalidRequest(f"roles must be a non-empty subset of {', '.join(CLIENT_ROLES)}")
    elif roles != [ADMIN_ROLE]:
        raise InvalidRequest("an exchange client without an office has exactly the admin role")
    secret = secrets.new_secret()
    client = Client(client_id=secrets.new_id("cl_"), office_code=office_code, name=name,
                    secret_hash=secrets.hash_client_secret(secret), roles=sorted(set(roles)))
    s.add(client)
    s.flush()
    audit.append(s, action=AuditAction.CLIENT_CREATE, outcome=AuditOutcome.OK, actor=actor, office=office_code,
                 subject=client.client_id, detail={"roles": client.roles, "name": name}, request_id=request_id)
    return client, secret


def authenticate_client(s: Session, client_id: str, secret: str) -> Client | None:
    """The client whose secret this is, or ``None``; an unknown client costs what a known one does."""
    client = s.get(Client, client_id) if client_id else None
    ok = secrets.client_secret_matches(client.secret_hash if client else None, secret)
    if not ok or client is None or client.disabled_at is not None:
        return None
    upgraded = secrets.upgraded_client_hash(client.secret_hash, secret)
    if upgraded is not None:
        # An Argon2 hash from before client secrets were hashed fast. Only if it is still the
        # stored one: a rotation committed meanwhile must not be undone with the old secret.
        s.execute(update(Client).where(Client.client_id == client.client_id,
                                       Client.secret_hash == client.secret_hash)
                  .values(secret_hash=upgraded).execution_options(synchronize_session=False))
        s.expire(client, ["secret_hash"])
    return client


def find_client(s: Session, client_id: str) -> Client:
    """Any client, whatever its office: for operators working on the database (the CLI)."""
    client = s.get(Client, client_id) if client_id else None
    if client is None:
        raise NotFound(f"no client {client_id}")
    return client


def get_client(s: Session, office_code: str | None, client_id: str) -> Client:
    """A client of ``office_code`` (``None``: the exchange's own); another office's answers as unknown."""
    client = s.get(Client, client_id) if client_id else None
    if client is None or client.office_code != office_code:
        raise NotFound(f"no client {client_id}" + (f" of office {office_code}" if office_code else ""))
    return client


def _not_self(client: Client, actor: str, what: str) -> None:
    if client.client_id == actor:
        raise SelfLockout(f"a client cannot {what} itself: it would lock itself out; ask another "
                          "office-admin client or the exchange's admin")


def disable_client(s: Session, office_code: str | None, client_id: str, *, actor: str,
                   request_id: str | None = None) -> Client:
    """No new token, and the tokens already issued stop on their next request."""
    client = get_client(s, office_code, client_id)
    _not_self(client, actor, "disable")
    if client.disabled_at is not None:
        return client
    client.disabled_at = utcnow()
    client.credential_version += 1
    s.flush()
    audit.append(s, action=AuditAction.CLIENT_DISABLE, outcome=AuditOutcome.OK,
                 actor=actor, office=office_code, subject=client_id,
                 request_id=request_id)
    return client


def enable_client(s: Session, office_code: str | None, client_id: str, *, actor: str,
                  request_id: str | None = None) -> Client:
    """Tokens can be had again with the client's secret; those issued before it was disabled stay dead."""
    client = get_client(s, office_code, client_id)
    if client.disabled_at is None:
        return client
    disabled_at, client.disabled_at = client.disabled_at, None
    s.flush()
    audit.append(s, action=AuditAction.CLIENT_ENABLE, outcome=AuditOutcome.OK,
                 actor=actor, office=office_code, subject=client_id,
                 detail={"disabled_at": disabled_at.isoformat()}, request_id=request_id)
    return client


def rotate_client_secret(s: Session, office_code: str | None, client_id: str, *, actor: str,
                         request_id: str | None = None) -> tuple[Client, str]:
    """A new secret, returned once; the old secret and every token got with it stop at once."""
    client = get_client(s, office_code, client_id)
    secret = secrets.new_secret()
    client.secret_hash = secrets.hash_client_secret(secret)
    client.credential_version += 1
    s.flush()
    audit.append(s, action=AuditAction.CLIENT_ROTATE_SECRET, outcome=AuditOutcome.OK, actor=actor, office=office_code,
                 subject=client_id, request_id=request_id)
    return client, secret


# --- applications ----------------------------------------------------------------------------

def upsert_application(s: Session, office: str, data) -> Application:
    """Register or update an office's application from manifest or API data (bibliographic)."""
    key = numbers.normalise(office, data.number)
    # Insert-or-keep, then lock the row: deposits of several dossiers for one new application
    # arrive at once, and a select-then-insert would fail all but one of them.
    insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    # RETURNING tells whether this statement made the row (rowcount is -1 on some drivers).
    created = s.execute(
        insert(Application).values(office_code=office, number=data.number, number_key=key, ipc=[])
        .on_conflict_do_nothing(index_elements=["office_code", "number_key"]).returning(Application.id)
    ).first() is not None
    q = select(Application).where(Application.office_code == office, Application.number_key == key)
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    app = s.scalars(q.execution_options(populate_existing=True)).one()
    old_pct_key = app.pct_key
    app.filing_date = data.filing_date
    app.title = data.title
    app.ipc = list(data.ipc)
    app.pct_number = data.pct
    app.pct_key = numbers.normalise(None, data.pct) if data.pct else None
    if data.publication is not None:
        app.publication_number = data.publication.number
        app.publication_key = numbers.normalise(office, data.publication.number)
        app.publication_date = data.publication.date
    wanted = [(p.office, p.number, numbers.normalise(p.office, p.number), p.date) for p in data.priorities]
    if created or [(p.office, p.number, p.number_key, p.date) for p in app.priorities] != wanted \
            or app.pct_key != old_pct_key:
        app.priorities = [PriorityClaim(office=o, number=n, number_key=k, date=d) for o, n, k, d in wanted]
        s.flush()
        _index_correspondence(s, app)
    else:
        s.flush()
    return app


def _index_correspondence(s: Session, app: Application) -> None:
    keys = {app.number_key: "number"}
    for p in app.priorities:
        keys.setdefault(p.number_key, "priority")
    if app.pct_key:
        keys.setdefault(app.pct_key, "pct")
    s.execute(delete(CorrespondenceKey).where(CorrespondenceKey.application_id == app.id))
    s.add_all(CorrespondenceKey(application_id=app.id, key=k, kind=kind) for k, kind in keys.items())
    s.flush()


def list_clients(s: Session, office_code: str) -> list[Client]:
    get_office(s, office_code)
    return list(s.scalars(select(Client).where(Client.office_code == office_code).order_by(Client.created_at)))


def update_office(s: Session, code: str, *, name: str | None, roles: Sequence[str] | None, settings: dict | None,
                  actor: str, request_id: str | None = None) -> Office:
    """Change an office's name, roles or settings. ``settings`` merges: ``{"aspec": {"requires_cct": true}}``
    or the dotted form ``{"aspec.requires_cct": true}``; a ``null`` value removes a setting."""
    office = get_office(s, code)
    if name is not None:
        office.name = name
    if roles is not None:
        office.roles = sorted(set(roles))
    if settings:
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in (office.settings or {}).items()}
        for path, value in _flatten(settings):
            *parents, leaf = path
            node = merged
            for p in parents:
                node = node.setdefault(p, {})
                if not isinstance(node, dict):
                    raise InvalidRequest(f"setting {'.'.join(parents)} is not a group")
            if value is None:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        _check_settings(merged)
        office.settings = merged
    s.flush()
    audit.append(s, action=AuditAction.OFFICE_UPDATE, outcome=AuditOutcome.OK, actor=actor, office=code, subject=code,
                 detail={"name": name, "roles": roles, "settings": settings}, request_id=request_id)
    return office


_BOOL_SETTINGS = {("aspec", "requires_cct"), ("aspec", "accepts_written_opinion")}


def _flatten(d: dict, prefix: tuple = ()):
    for k, v in d.items():
        path = prefix + tuple(k.split("."))
        if isinstance(v, dict):
            yield from _flatten(v, path)
        else:
            yield path, v


def _check_settings(settings: dict) -> None:
    for path, value in _flatten(settings):
        if path in _BOOL_SETTINGS and not isinstance(value, bool):
            raise InvalidRequest(f"setting {'.'.join(path)} must be true or false")


def register_application(s: Session, office: str, data, *, actor: str,
                         request_id: str | None = None) -> tuple[Application, bool]:
    existed = s.scalars(select(Application.id).where(
        Application.office_code == office, Application.number_key == numbers.normalise(office, data.number))).first()
    app = upsert_application(s, office, data)
    audit.append(s, action=AuditAction.APPLICATION_REGISTER, outcome=AuditOutcome.OK,
                 actor=actor, office=office, subject=app.number,
                 detail={"created": existed is None}, request_id=request_id)
    return app, existed is None
