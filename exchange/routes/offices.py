from __future__ import annotations

from fastapi import APIRouter

from crypto.keys import public_jwk
from dossiers import registry

from ..access.principals import ADMIN, DEPOSITOR, EXAMINER, OFFICE_ADMIN, Principal
from ..deps import RequestIdDep, SessionDep, require, require_office
from ..schemas import (
    ClientCreate,
    ClientCreated,
    ClientRead,
    KeyCreate,
    KeyRead,
    KeyRevoke,
    OfficeCreate,
    OfficeRead,
    OfficeUpdate,
)

router = APIRouter(prefix="/v1/offices", tags=["offices"])
ANY_CLIENT = (ADMIN, OFFICE_ADMIN, DEPOSITOR, EXAMINER)


def _key_read(key) -> KeyRead:
    out = KeyRead.model_validate(key)
    out.jwk = public_jwk(key.public_key_pem, key.alg, key.kid)
    return out


@router.post("", status_code=201, response_model=OfficeRead)
def create_office(body: OfficeCreate, session: SessionDep, rid: RequestIdDep,
                  principal: Principal = require(ADMIN)):
    return registry.create_office(session, code=body.code, name=body.name, roles=body.roles,
                                  settings=body.settings, actor=principal.client_id, request_id=rid)


@router.get("", response_model=list[OfficeRead], dependencies=[require(*ANY_CLIENT)])
def list_offices(session: SessionDep):
    return registry.list_offices(session)


@router.get("/{code}", response_model=OfficeRead, dependencies=[require(*ANY_CLIENT)])
def get_office(code: str, session: SessionDep):
    return registry.get_office(session, code)


@router.patch("/{code}", response_model=OfficeRead)
def update_office(code: str, body: OfficeUpdate, session: SessionDep, rid: RequestIdDep,
                  principal: Principal = require(ADMIN)):
    """Office settings, among them ``aspec.requires_cct`` and ``aspec.accepts_written_opinion``."""
    return registry.update_office(session, code, name=body.name, roles=body.roles, settings=body.settings,
                                  actor=principal.client_id, request_id=rid)


@router.post("/{code}/keys", status_code=201, response_model=KeyRead)
def register_key(code: str, body: KeyCreate, session: SessionDep, rid: RequestIdDep,
                 principal: Principal = require_office(OFFICE_ADMIN)):
    key = registry.register_key(session, code, kid=body.kid, alg=body.alg, public_key_pem=body.public_key_pem,
                                not_before=body.not_before, not_after=body.not_after,
                                actor=principal.client_id, request_id=rid)
    return _key_read(key)


@router.get("/{code}/keys", response_model=list[KeyRead], dependencies=[require(*ANY_CLIENT)])
def list_keys(code: str, session: SessionDep):
    """Every key the office ever registered, revoked ones included: a dossier signed
    before a revocation still verifies offline against the key valid at its ``signed_at``."""
    return [_key_read(k) for k in registry.list_keys(session, code)]


@router.get("/{code}/keys/{kid}", response_model=KeyRead, dependencies=[require(*ANY_CLIENT)])
def get_key(code: str, kid: str, session: SessionDep):
    return _key_read(registry.get_key(session, code, kid))


@router.post("/{code}/keys/{kid}/revoke", response_model=KeyRead)
def revoke_key(code: str, kid: str, session: SessionDep, rid: RequestIdDep, body: KeyRevoke | None = None,
               principal: Principal = require_office(OFFICE_ADMIN)):
    body = body or KeyRevoke()
    key = registry.revoke_key(session, code, kid, revoked_at=body.revoked_at, reason=body.reason,
                              actor=principal.client_id, request_id=rid)
    return _key_read(key)


@router.post("/{code}/clients", status_code=201, response_model=ClientCreated,
             responses={201: {"description": "the secret is shown once"}})
def create_client(code: str, body: ClientCreate, session: SessionDep, rid: RequestIdDep,
                  principal: Principal = require_office(OFFICE_ADMIN)):
    client, secret = registry.create_client(session, office_code=code, roles=list(body.roles), name=body.name,
                                            actor=principal.client_id, request_id=rid)
    return ClientCreated(client_id=client.client_id, client_secret=secret, office=code, roles=client.roles,
                         name=client.name)


@router.get("/{code}/clients", response_model=list[ClientRead], dependencies=[require_office(OFFICE_ADMIN)])
def list_clients(code: str, session: SessionDep):
    """The office's clients, disabled ones included (``disabled_at`` set); never their secrets."""
    return registry.list_clients(session, code)


@router.post("/{code}/clients/{client_id}/disable", response_model=ClientRead,
             responses={404: {"description": "no such client of this office"},
                        409: {"description": "a client cannot disable itself (`self-lockout`)"}})
def disable_client(code: str, client_id: str, session: SessionDep, rid: RequestIdDep,
                   principal: Principal = require_office(OFFICE_ADMIN)):
    """Disable a client: it gets no new token, and the tokens it holds answer 401 from the very
    next request. Disabling a disabled client changes nothing. A client cannot disable itself."""
    return registry.disable_client(session, code, client_id, actor=principal.client_id, request_id=rid)


@router.post("/{code}/clients/{client_id}/enable", response_model=ClientRead,
             responses={404: {"description": "no such client of this office"}})
def enable_client(code: str, client_id: str, session: SessionDep, rid: RequestIdDep,
                  principal: Principal = require_office(OFFICE_ADMIN)):
    """Enable a disabled client: its secret gets tokens again. Tokens issued before it was
    disabled stay invalid."""
    return registry.enable_client(session, code, client_id, actor=principal.client_id, request_id=rid)


@router.post("/{code}/clients/{client_id}/secret", response_model=ClientCreated,
             responses={200: {"description": "the new secret, shown once"},
                        404: {"description": "no such client of this office"}})
def rotate_client_secret(code: str, client_id: str, session: SessionDep, rid: RequestIdDep,
                         principal: Principal = require_office(OFFICE_ADMIN)):
    """Replace a client's secret; the new ``client_secret`` is shown once. The old secret, and
    every token got with it, stop working at once (a client rotating its own secret gets a new
    token with the new one)."""
    client, secret = registry.rotate_client_secret(session, code, client_id, actor=principal.client_id,
                                                   request_id=rid)
    return ClientCreated(client_id=client.client_id, client_secret=secret, office=code, roles=client.roles,
                         name=client.name)
