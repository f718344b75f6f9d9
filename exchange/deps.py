"""Route dependencies as ``Annotated`` aliases. Every route declares its access through one
of :func:`require`, :func:`require_office` or :data:`public`; a test walks the routes and
fails on any that declares none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dossiers.errors import Forbidden, NotFound
from dossiers.scope import Scope
from dossiers.storage import BlobStore

from .access.auth import TokenService
from .access.principals import ADMIN, Principal
from .settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: commits when the handler returns, rolls back on error."""
    session: Session = request.app.state.session_factory()
    session.info["request_id"] = getattr(request.state, "request_id", None)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> BlobStore:
    return request.app.state.store


def get_tokens(request: Request) -> TokenService:
    return request.app.state.tokens


def current_principal(request: Request) -> Principal:
    principal = request.app.state.tokens.authenticate(request.headers.get("authorization"))
    request.state.principal = principal
    return principal


def current_scope(principal: Annotated[Principal, Depends(current_principal)]) -> Scope:
    """Whose data the caller reads (:attr:`Principal.scope`): every service that lists or reads
    takes this, never an office code that may be ``None``."""
    return principal.scope


def request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[BlobStore, Depends(get_store)]
TokensDep = Annotated[TokenService, Depends(get_tokens)]
RequestIdDep = Annotated[str | None, Depends(request_id)]
ScopeDep = Annotated[Scope, Depends(current_scope)]


def public() -> None:
    """Marks a route that anyone may call."""


public.__access__ = "public"  # type: ignore[attr-defined]


def require(*roles: str):
    """Any client holding one of ``roles`` (``admin`` is always named explicitly)."""

    def dependency(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.has_any(roles):
            raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
        return principal

    dependency.__access__ = ("roles", roles)  # type: ignore[attr-defined]
    return Depends(dependency)


def office_not_found(code: str | None) -> NotFound:
    """What another office's administrative resources answer: exactly what an office code that
    does not exist answers (``registry.get_office``), so that nothing tells them apart."""
    return NotFound(f"no office {code}")


def require_office(*roles: str, param: str = "code"):
    """The exchange's admin, or a client of the office named by the path parameter ``param``
    holding one of ``roles``. Another office's resources answer 404, as if they did not exist."""

    def dependency(request: Request, principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.is_admin:
            return principal
        code = request.path_params.get(param)
        if principal.office != code:
            raise office_not_found(code)
        if not principal.has_any(roles):
            raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")
        return principal

    dependency.__access__ = ("office", roles)  # type: ignore[attr-defined]
    return Depends(dependency)


AdminDep = Annotated[Principal, require(ADMIN)]
