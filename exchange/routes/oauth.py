from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form
from fastapi.responses import JSONResponse

from crypto.keys import public_jwk
from dossiers import signing_keys

from ..access.ratelimit import rate_limited
from ..deps import RequestIdDep, SessionDep, TokensDep, public
from ..schemas import TokenResponse

router = APIRouter(tags=["auth"])


def _oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    # RFC 6749 section 5.2 prescribes this body for the token endpoint.
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="exchange"'
    body = {"error": error, "error_description": description,  # RFC 6749 members
            "type": f"/problems/oauth-{error}", "title": "Token request refused", "status": status,
            "code": f"oauth-{error}", "detail": description}
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


@router.post("/oauth/token", response_model=TokenResponse, dependencies=[Depends(public), rate_limited("token")],
             responses={400: {"description": "RFC 6749 error"}, 401: {"description": "invalid_client"},
                        429: {"description": "too many requests from this address or for this client; "
                                             "see Retry-After"}})
def token(
    tokens: TokensDep,
    request_id: RequestIdDep,
    grant_type: Annotated[str, Form()] = "",
    client_id: Annotated[str, Form()] = "",
    client_secret: Annotated[str, Form()] = "",
):
    if grant_type != "client_credentials":
        return _oauth_error("unsupported_grant_type", "only grant_type=client_credentials is supported")
    if not client_id or not client_secret:
        return _oauth_error("invalid_request", "client_id and client_secret are required")
    granted = tokens.grant(client_id, client_secret, request_id)
    if not granted:
        return _oauth_error("invalid_client", "unknown client or wrong secret", 401)
    return JSONResponse(granted, headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json", dependencies=[Depends(public)])
def jwks(session: SessionDep) -> dict:
    return {"keys": [public_jwk(k.pem, k.alg, k.kid) for k in signing_keys.published(session)]}
