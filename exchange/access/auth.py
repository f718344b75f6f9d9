"""OAuth 2 client credentials (RFC 6749, section 4.4) and bearer tokens (RFC 6750).

Tokens say who the client is and which roles it holds; they carry no grants to
partners' data, so an agreement's change applies on the very next request.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import sessionmaker

from crypto import tokens
from crypto.errors import TokenExpired, TokenInvalid
from crypto.keys import PublicKey
from dossiers import audit, registry, signing_keys
from dossiers.errors import Unauthenticated
from dossiers.models import Client
from dossiers.vocab import AuditAction, AuditOutcome

from ..settings import Settings
from .principals import Principal

KEY_CACHE_SECONDS = 60


class TokenService:
    def __init__(self, settings: Settings, session_factory: sessionmaker):
        self._settings = settings
        self._sf = session_factory
        self._keys: dict[str, PublicKey] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _published(self, refresh: bool = False) -> dict[str, PublicKey]:
        with self._lock:
            if refresh or time.monotonic() - self._loaded_at > KEY_CACHE_SECONDS:
                with self._sf() as s:
                    self._keys = {k.kid: k for k in signing_keys.published(s)}
                self._loaded_at = time.monotonic()
            return self._keys

    def grant(self, client_id: str, client_secret: str, request_id: str | None = None) -> dict:
        with self._sf.begin() as s:
            client = registry.authenticate_client(s, client_id, client_secret)
            if client is None:
                audit.append(s, action=AuditAction.OAUTH_TOKEN, outcome=AuditOutcome.REFUSED,
                             actor=client_id[:64] or None,
                             reason="invalid_client", request_id=request_id)
                return {}
            key = signing_keys.current(s)
            scope = " ".join(sorted(client.roles))
            token = tokens.issue(
                {"sub": client.client_id, "office": client.office_code, "roles": sorted(client.roles), "scope": scope,
                 "credential_version": client.credential_version},
                key, issuer=self._settings.issuer, audience=self._settings.token_audience,
                ttl_seconds=self._settings.token_ttl_seconds,
            )
        return {"access_token": token, "token_type": "Bearer", "expires_in": self._settings.token_ttl_seconds,
                "scope": scope}

    def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("send an access token: Authorization: Bearer <token> (get one at /oauth/token)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must use the Bearer scheme")
        token = token.strip()
        try:
            try:
                claims = tokens.verify(token, self._published(), issuer=self._settings.issuer,
                                       audience=self._settings.token_audience)
            except TokenInvalid as exc:
                if isinstance(exc, TokenExpired):
                    raise
                # A key rotated in by another replica: reload once.
                claims = tokens.verify(token, self._published(refresh=True), issuer=self._settings.issuer,
                                       audience=self._settings.token_audience)
        except TokenExpired as exc:
            raise Unauthenticated(str(exc), reason="token-expired") from None
        except TokenInvalid as exc:
            raise Unauthenticated(str(exc), reason="token-invalid") from None
        with self._sf() as s:
            client = s.get(Client, claims.get("sub"))
            if client is None or client.disabled_at is not None:
                raise Unauthenticated("the client of this token no longer exists or is disabled",
                                      reason="client-disabled")
            if claims.get("credential_version", 0) != client.credential_version:
                raise Unauthenticated("this token was issued before the client's secret was replaced or the "
                                      "client disabled; get a new one", reason="token-revoked")
            # Roles come from the client's record now, not from the token, so a change applies at once.
            return Principal(client.client_id, client.office_code, frozenset(client.roles))
