"""The domain's exception tree. ``exchange/errors.py`` maps each to one problem response."""

from __future__ import annotations


class DomainError(Exception):
    """Base of domain errors. ``code`` names the check that failed (a stable slug)."""

    code = "domain-error"
    title = "Request refused"

    def __init__(self, detail: str | None = None, *, errors: list[dict] | None = None, **extra):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.extra = extra
        # Audit entries to write although the request's transaction is rolled back (a denied
        # read answers 404, yet the decision must stay in the log).
        self.audit: list[dict] = []


# --- generic ---------------------------------------------------------------------------------

class NotFound(DomainError):
    code, title = "not-found", "Not found"


class Conflict(DomainError):
    code, title = "conflict", "Conflict"


class InvalidRequest(DomainError):
    code, title = "invalid-request", "Invalid request"


class Forbidden(DomainError):
    code, title = "forbidden", "Not allowed"


class Unauthenticated(DomainError):
    code, title = "unauthenticated", "Authentication required"


class TooManyRequests(DomainError):
    """Too many attempts from one address or at one account; ``retry_after`` is in seconds."""

    code, title = "too-many-requests", "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra):
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class RequestTimeout(DomainError):
    """The client sent its request body too slowly (``exchange/timeouts.py``): whatever it
    started is refused, as when it disconnects."""

    code, title = "request-timeout", "Request too slow"


class SelfLockout(Conflict):
    code, title = "self-lockout", "Would lock the caller out"


class KeyRejected(InvalidRequest):
    code, title = "key-invalid", "Public key rejected"


class ReliedDocumentUnknown(InvalidRequest):
    code, title = "relied-document-unknown", "Relied-on document unknown"


class NotOwnApplication(Forbidden):
    code, title = "not-own-application", "Not one of the caller's office's applications"


class NumberUnreadable(InvalidRequest, ValueError):
    """An application, publication, priority or PCT number without a letter or digit: it has
    no look-up key. A ``ValueError`` too, for callers that treat it as unparseable text."""

    code, title = "number-unreadable", "Number has no letters or digits"


# --- deposit refusals ------------------------------------------------------------------------

class DepositRefused(DomainError):
    """A deposit was refused; nothing of it is kept."""

    code, title = "deposit-refused", "Deposit refused"


class BodyTooLarge(DepositRefused):
    code, title = "body-too-large", "Request body too large"


class MultipartMalformed(DepositRefused):
    code, title = "multipart-malformed", "Malformed multipart body"


class ManifestMissing(DepositRefused):
    code, title = "manifest-missing", "Manifest part missing or not first"


class ManifestMalformed(DepositRefused):
    code, title = "manifest-malformed", "Manifest is not a compact JWS"


class AlgorithmRefused(DepositRefused):
    code, title = "alg-not-allowed", "Signature algorithm not allowed"


class ManifestInvalid(DepositRefused):
    code, title = "manifest-invalid", "Manifest does not have the required shape"


class OfficeMismatch(DepositRefused):
    code, title = "office-mismatch", "Manifest office is not the caller's office"


class KeyUnknown(DepositRefused):
    code, title = "key-unknown", "Signing key unknown"


class KeyRevoked(DepositRefused):
    code, title = "key-revoked", "Signing key revoked"


class KeyNotValid(DepositRefused):
    code, title = "key-not-valid", "Signing key outside its validity window"


class SignatureRefused(DepositRefused):
    code, title = "signature-invalid", "Manifest signature does not verify"


class SignedInFuture(DepositRefused):
    code, title = "signed-at-in-future", "Manifest signed in the future"


class DocumentMissing(DepositRefused):
    code, title = "document-missing", "Document part missing"


class DocumentUnexpected(DepositRefused):
    code, title = "document-unexpected", "Document part not in the manifest"


class DocumentDigestMismatch(DepositRefused):
    code, title = "document-digest-mismatch", "Document bytes differ from the manifest's sha256"


class DocumentSizeMismatch(DepositRefused):
    code, title = "document-size-mismatch", "Document size differs from the manifest"


class DepositInProgress(DepositRefused):
    code, title = "deposit-in-progress", "The same manifest is being deposited"


# --- storage and integrity -------------------------------------------------------------------

class StorageFailure(DomainError):
    code, title = "storage-unavailable", "Document storage unavailable"


class StoredObjectCorrupt(DomainError):
    code, title = "stored-object-corrupt", "Stored document failed its integrity check"


# --- webhooks ----------------------------------------------------------------------------------

class WebhookTargetRefused(InvalidRequest):
    """A webhook URL that the exchange will not call (``dossiers/netguard.py``); the detail
    says why. Raised at registration and again before each delivery."""

    code, title = "webhook-target-refused", "Webhook target refused"

    def __init__(self, url: str, reason: str):
        super().__init__(f"webhook target {url!r} refused: {reason}")
        self.url = url
        self.reason = reason


class WebhookTargetUnresolvable(WebhookTargetRefused):
    """The host name did not resolve. Unlike other refusals this may pass: retry later."""

    code, title = "webhook-target-unresolvable", "Webhook target does not resolve"
