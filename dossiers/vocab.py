"""The exchange's closed vocabularies, one ``StrEnum`` each.

The values are part of the public contract (API.md) and are stored in databases: never change
one, only add. Schemas, services, pages and docs take their lists from here, so a value added
here appears everywhere (OpenAPI lists them, the audit page offers them as filters).
"""

from __future__ import annotations

from enum import StrEnum


class DocumentType(StrEnum):
    """The type of a document in a dossier's manifest."""

    SR = "SR"
    WO = "WO"
    ER = "ER"
    ISR = "ISR"
    WOISA = "WOISA"
    IPRP = "IPRP"
    CLAIMS = "CLAIMS"
    CCT = "CCT"
    GRANT = "GRANT"
    REFUSAL = "REFUSAL"
    OTHER = "OTHER"


# Reports that may name allowable claims.
CLAIM_REPORT_TYPES = (DocumentType.WO, DocumentType.ER, DocumentType.WOISA, DocumentType.IPRP)


class Topic(StrEnum):
    """Topics of the events an office's webhooks may subscribe to (API contract)."""

    DOSSIER_DEPOSITED = "dossier.deposited"
    DOSSIER_ACCESSED = "dossier.accessed"
    AGREEMENT_CHANGED = "agreement.changed"
    ASPEC_REQUEST_DECIDED = "aspec_request.decided"


class InternalTopic(StrEnum):
    """Topics of events the outbox carries to the exchange's own notifications, never to a webhook."""

    INTEGRITY_ALERT = "integrity.alert"
    WEBHOOK_DEAD = "webhook.dead"
    TRACKING_REMINDER = "tracking.reminder"


class AuditAction(StrEnum):
    """What an audit entry records. ``dossiers.audit.append`` accepts these only."""

    ACCESS_DECISION = "access.decision"
    AGREEMENT_CREATED = "agreement.created"
    AGREEMENT_SUSPEND = "agreement.suspend"
    AGREEMENT_RESUME = "agreement.resume"
    AGREEMENT_TERMINATE = "agreement.terminate"
    APPLICATION_REGISTER = "application.register"
    ASPEC_REQUEST_DECIDE = "aspec_request.decide"
    ASPEC_REQUEST_WITHDRAW = "aspec_request.withdraw"
    BLOB_INTEGRITY = "blob.integrity"
    BLOB_SWEEP = "blob.sweep"
    CLIENT_CREATE = "client.create"
    CLIENT_DISABLE = "client.disable"
    CLIENT_ENABLE = "client.enable"
    CLIENT_ROTATE_SECRET = "client.rotate_secret"
    DOSSIER_DEPOSIT = "dossier.deposit"
    EXCHANGE_KEY_ROTATE = "exchange_key.rotate"
    KEY_REGISTER = "key.register"
    KEY_REVOKE = "key.revoke"
    OAUTH_TOKEN = "oauth.token"
    OFFICE_CREATE = "office.create"
    OFFICE_UPDATE = "office.update"
    USER_CREATE = "user.create"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_RESET_PASSWORD = "user.reset_password"
    USER_SIGN_IN = "user.sign_in"
    USER_UNLOCK = "user.unlock"
    WEBHOOK_SUBSCRIBE = "webhook.subscribe"
    # A subscription's new status: webhook.<status>.
    WEBHOOK_ACTIVE = "webhook.active"
    WEBHOOK_DISABLED = "webhook.disabled"
    WEBHOOK_DELETED = "webhook.deleted"
    WEBHOOK_REDELIVER = "webhook.redeliver"
    WEBHOOK_DEAD = "webhook.dead"


class AuditOutcome(StrEnum):
    """How the recorded action ended."""

    OK = "ok"
    REFUSED = "refused"
    GRANTED = "granted"
    DENIED = "denied"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"
    DELETED = "deleted"
    RESTORED = "restored"


class AspecStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class AspecReason(StrEnum):
    """Why an ASPEC request is rejected (API contract); ``explanation`` says it in words."""

    explanation: str

    def __new__(cls, value: str, explanation: str) -> AspecReason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.explanation = explanation
        return member

    NOT_PARTICIPANT = ("NOT_PARTICIPANT",
                       "The two offices are not both parties to an ASPEC agreement in force today "
                       "(or the first office is this office itself).")
    NOT_CORRESPONDING = ("NOT_CORRESPONDING",
                         "The applications do not correspond: neither claims the other as priority, they share "
                         "no priority and they do not derive from the same PCT application.")
    MISSING_MIN_DOCS = ("MISSING_MIN_DOCS",
                        "The relied documents lack the minimum: a search report and an examination report (ISR "
                        "and IPRP on the PCT route), or a written opinion naming allowable claims where this "
                        "office accepts one.")
    NO_ALLOWABLE_CLAIM = ("NO_ALLOWABLE_CLAIM", "None of the relied reports names a claim found allowable.")
    ISA_NOT_ASEAN = ("ISA_NOT_ASEAN",
                     "On the PCT-ASPEC route the international search or examination was done by an authority "
                     "outside ASEAN.")
    MISSING_CLAIMS = ("MISSING_CLAIMS",
                      "The first office's allowable claims (a CLAIMS document) are not among the relied documents.")
    MISSING_CCT = ("MISSING_CCT",
                   "This office requires a claim correspondence table: rely on a CCT document or give the "
                   "correspondence in the form.")
    NOT_ENGLISH = ("NOT_ENGLISH", "A relied document is neither in English nor accompanied by an English translation.")
    TOO_LATE = ("TOO_LATE", "This office has already granted or refused the application.")


class OfficeRole(StrEnum):
    """What an office does on the exchange."""

    DEPOSITING = "depositing"
    ACCESSING = "accessing"


class ClientRole(StrEnum):
    """Roles of an office's API clients (the exchange's own admin client has ``admin``)."""

    DEPOSITOR = "depositor"
    EXAMINER = "examiner"
    OFFICE_ADMIN = "office-admin"


class UserRole(StrEnum):
    """Roles of a person signing in to an office's web pages."""

    EXAMINER = "examiner"
    OFFICE_ADMIN = "office-admin"


def markdown() -> str:
    """``docs/vocabularies.md``: every vocabulary with its values (a test keeps the file current;
    regenerate it with ``python3 -m dossiers.vocab > docs/vocabularies.md``)."""
    sections: list[tuple[str, type[StrEnum], str]] = [
        ("Document types", DocumentType, "`type` of a manifest's document; agreements' and watches' "
                                         "`document_types`."),
        ("Webhook topics", Topic, "`events` of a webhook subscription (none: every topic)."),
        ("Internal event topics", InternalTopic, "Carried by the outbox to the exchange's own notifications only."),
        ("Audit actions", AuditAction, "`action` of an audit entry (`GET /v1/audit?action=`)."),
        ("Audit outcomes", AuditOutcome, "`outcome` of an audit entry (`GET /v1/audit?outcome=`)."),
        ("ASPEC request statuses", AspecStatus, "`status` of an ASPEC request."),
        ("ASPEC reason codes", AspecReason, "`reasons` of a rejected ASPEC request."),
        ("Office roles", OfficeRole, "`roles` of an office."),
        ("Client roles", ClientRole, "`roles` of an office's API client (the exchange's own admin client has "
                                     "`admin`)."),
        ("People's roles", UserRole, "Roles of a person signing in to an office's web pages."),
    ]
    out = ["# Vocabularies", "",
           "Generated from `dossiers/vocab.py` (`python3 -m dossiers.vocab > docs/vocabularies.md`). The values",
           "are part of the contract (API.md) and are stored in databases: they are never renamed, only added.", ""]
    for title, enum, where in sections:
        out += [f"## {title}", "", where, ""]
        for member in enum:
            explanation = getattr(member, "explanation", "")
            out.append(f"- `{member.value}`" + (f": {explanation}" if explanation else ""))
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown(), end="")
