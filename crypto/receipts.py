"""Deposit receipts: a compact JWS (RFC 7515) by the exchange over what it received.

The payload binds the manifest's SHA-256, the depositor's exact JWS, the dossier
id and the time received, so a depositor can prove what the exchange accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from . import jws
from .errors import SignatureInvalid
from .keys import EXCHANGE_ALGORITHM, PrivateKey, PublicKey

RECEIPT_TYPE = "exchange-receipt+jws"


@dataclass(frozen=True)
class Receipt:
    dossier_id: str
    office: str
    manifest_sha256: str
    signature_sha256: str
    received_at: str
    issuer: str

    def as_payload(self) -> dict:
        return {
            "iss": self.issuer,
            "dossier_id": self.dossier_id,
            "office": self.office,
            "manifest_sha256": self.manifest_sha256,
            "signature_sha256": self.signature_sha256,
            "received_at": self.received_at,
        }


def issue(receipt: Receipt, key: PrivateKey) -> str:
    payload = json.dumps(receipt.as_payload(), separators=(",", ":"), sort_keys=True).encode()
    return jws.sign(payload, key, headers={"typ": RECEIPT_TYPE})


def verify(token: str, keys: Mapping[str, PublicKey]) -> Receipt:
    """Verify a receipt against the exchange's published keys; return it or raise."""
    header = jws.header_of(token)
    kid = header.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise SignatureInvalid("the receipt's key is not among the exchange's published keys")
    payload = json.loads(jws.verify(token, key, algorithms=[EXCHANGE_ALGORITHM]))
    return Receipt(
        dossier_id=payload["dossier_id"],
        office=payload["office"],
        manifest_sha256=payload["manifest_sha256"],
        signature_sha256=payload["signature_sha256"],
        received_at=payload["received_at"],
        issuer=payload["iss"],
    )


def format_time(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")
