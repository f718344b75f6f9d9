"""Opaque cursors for keyset pagination: base64url of a small JSON array."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from dossiers.errors import InvalidRequest

MAX_LIMIT = 200
_BIGINT = 2**63


def encode(*values) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _value(v, kind: type):
    """One cursor value back in its kind; ``ValueError`` when it is not one ``encode`` gives."""
    if kind is datetime and isinstance(v, str):
        when = datetime.fromisoformat(v)
        try:
            return when.astimezone(UTC) if when.tzinfo is not None else when
        except OverflowError:
            raise ValueError(v) from None
    if kind is int and isinstance(v, int) and not isinstance(v, bool) and -_BIGINT <= v < _BIGINT:
        return v
    if kind is str and isinstance(v, str) and "\x00" not in v:
        return v
    raise ValueError(v)


def decode(cursor: str | None, *kinds: type) -> list | None:
    """The values of a cursor this API gave out, one per kind (``datetime``, ``int``, ``str``);
    ``None`` for no cursor. Anything else, crafted or garbled, is refused with a 422."""
    if not cursor:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError
        return [_value(v, kind) for v, kind in zip(values, kinds)]
    except (ValueError, binascii.Error, RecursionError):
        raise InvalidRequest("the cursor is not one this API gave out") from None
