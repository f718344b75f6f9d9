"""Rate limits on the two credential checks, ``POST /signin`` and ``POST /oauth/token``: per
client address and per account (the username or ``client_id`` sent, known or not, so a limit
says nothing about which accounts exist). Counted with the ``limits`` library, in Redis when
the exchange runs with a Redis broker (every API process and replica shares the counts), in
memory on the embedded default. Every attempt counts, whatever its outcome.

The lock-out after failed sign-ins (``dossiers.users``) stays the guard against guessing a
password; these limits keep a burst of attempts from costing the server more than it allows.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.concurrency import run_in_threadpool

from dossiers.errors import TooManyRequests

from ..settings import Settings

log = logging.getLogger(__name__)


def _rates(value: str) -> list[RateLimitItem]:
    return [] if value.strip().lower() == "off" else parse_many(value)


@dataclass(frozen=True)
class Rule:
    """The limits of one endpoint, and the form field that names the account."""

    per_address: list[RateLimitItem]
    per_account: list[RateLimitItem]
    account_field: str
    normalise_account: bool  # usernames are case-insensitive; client_ids are not


class RateLimits:
    def __init__(self, settings: Settings):
        self._storage = storage_from_string(settings.rate_limit_storage)
        self._in_memory = isinstance(self._storage, MemoryStorage)
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.rules = {
            "signin": Rule(_rates(settings.signin_limit_per_address), _rates(settings.signin_limit_per_account),
                           "username", True),
            "token": Rule(_rates(settings.token_limit_per_address), _rates(settings.token_limit_per_client),
                          "client_id", False),
        }

    def check(self, endpoint: str, address: str, account: str) -> None:
        """Count one attempt; :class:`TooManyRequests` when the address or the account is over a
        limit. An attempt refused for its address does not count against the account."""
        rule = self.rules[endpoint]
        if rule.normalise_account:
            account = account.strip().lower()
        # A digest: any string a client sends becomes a short key of plain characters.
        account_key = hashlib.sha256(account.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        for kind, rates, key in (("address", rule.per_address, address), ("account", rule.per_account, account_key)):
            for rate in rates:
                ids = ("exchange", endpoint, kind, key)
                try:
                    allowed = self._limiter.hit(rate, *ids)
                    reset_at = None if allowed else self._limiter.get_window_stats(rate, *ids).reset_time
                except Exception:
                    log.warning("rate limit store unavailable; %s not limited", endpoint, exc_info=True)
                    return
                if not allowed:
                    retry_after = max(1, math.ceil((reset_at or time.time()) - time.time()))
                    who = "from this address" if kind == "address" else "for this account"
                    raise TooManyRequests(f"too many attempts {who} (at most {rate}); try again in "
                                          f"{retry_after} s", retry_after=retry_after)

    async def acheck(self, endpoint: str, address: str, account: str) -> None:
        if self._in_memory:
            self.check(endpoint, address, account)
        else:  # a round trip to Redis: not on the event loop
            await run_in_threadpool(self.check, endpoint, address, account)


def rate_limited(endpoint: str):
    """Route dependency: count this request against ``endpoint``'s limits (the account read from
    the request's form, which FastAPI has parsed already and Starlette keeps)."""

    async def dependency(request: Request) -> None:
        limits: RateLimits = request.app.state.rate_limits
        form = await request.form()
        account = form.get(limits.rules[endpoint].account_field)
        address = request.client.host if request.client else "unknown"
        await limits.acheck(endpoint, address, account if isinstance(account, str) else "")

    return Depends(dependency)
