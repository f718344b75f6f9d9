"""Opaque cursors for keyset pagination: base64url of a small JSON array."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from dossiers.errors import InvalidRequest

MAX_LIMIT = 200


def encode(*values) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode(cursor: str | None, n: int) -> list | None:
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != n:
            raise ValueError
        return values
    except ValueError:
        raise InvalidRequest("the cursor is not one this API gave out") from None
