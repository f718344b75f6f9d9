"""The crypto package's exception tree. Adapters map third-party errors to these."""


class CryptoError(Exception):
    """Base of every error raised by :mod:`crypto`."""

    code = "crypto-error"


class MalformedJWS(CryptoError):
    """The value is not a JWS in compact serialisation (RFC 7515, section 7.1)."""

    code = "jws-malformed"


class AlgorithmNotAllowed(CryptoError):
    """The JWS header names an algorithm outside the allowed list."""

    code = "alg-not-allowed"


class SignatureInvalid(CryptoError):
    """The signature does not verify with the given key."""

    code = "signature-invalid"


class KeyInvalid(CryptoError):
    """A key cannot be parsed or does not fit its declared algorithm."""

    code = "key-invalid"


class TokenInvalid(CryptoError):
    """An access token fails a check (signature, issuer, audience, shape)."""

    code = "token-invalid"


class TokenExpired(TokenInvalid):
    code = "token-expired"


class WebhookSignatureInvalid(CryptoError):
    code = "webhook-signature-invalid"


class AuditChainBroken(CryptoError):
    """An audit entry's hash does not follow from its predecessor."""

    code = "audit-chain-broken"

    def __init__(self, seq: int, reason: str):
        super().__init__(f"audit chain broken at entry {seq}: {reason}")
        self.seq = seq
        self.reason = reason
