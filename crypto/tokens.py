"""The exchange's access tokens: JWTs (RFC 7519) signed ES256 by the exchange.

Every verification checks signature, issuer, audience, expiry and issued-at; the
algorithm list is fixed to the exchange's own (RFC 8725, section 3.1).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from jose import jwt as jose_jwt
from jose.exceptions import ExpiredSignatureError, JOSEError

from .errors import MalformedJWS, TokenExpired, TokenInvalid
from .jws import _jose_key, header_of
from .keys import EXCHANGE_ALGORITHM, PrivateKey, PublicKey

LEEWAY_SECONDS = 30


def issue(claims: Mapping, key: PrivateKey, *, issuer: str, audience: str, ttl_seconds: int) -> str:
    now = int(time.time())
    body = {
        **claims,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    return jose_jwt.encode(body, key.pem, algorithm=key.alg, headers={"kid": key.kid, "typ": "at+jwt"})


def verify(token: str, keys: Mapping[str, PublicKey], *, issuer: str, audience: str) -> dict:
    """Return the claims of a valid token or raise :class:`TokenInvalid` / :class:`TokenExpired`."""
    try:
        header = header_of(token)
    except MalformedJWS:
        raise TokenInvalid("the access token is not a JWT") from None
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenInvalid("the access token was not signed by a key of this exchange")
    if header.get("alg") != EXCHANGE_ALGORITHM or key.alg != EXCHANGE_ALGORITHM:
        raise TokenInvalid("the access token's algorithm is not allowed")
    try:
        claims = jose_jwt.decode(
            token,
            _jose_key(key.pem, key.alg),
            algorithms=[EXCHANGE_ALGORITHM],
            audience=audience,
            issuer=issuer,
            options={"require_exp": True, "require_iat": True, "require_sub": True,
                     "require_aud": True, "require_iss": True, "leeway": LEEWAY_SECONDS},
        )
    except ExpiredSignatureError:
        raise TokenExpired("the access token has expired") from None
    except JOSEError as exc:
        raise TokenInvalid(f"the access token is not valid: {exc}") from None
    return claims
