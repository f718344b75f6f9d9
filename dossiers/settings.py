"""Settings from the environment. Unset, they give the embedded default: an SQLite file,
a local directory and a Celery broker that needs no server, all under ``EXCHANGE_HOME``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}") from None


def _limit(env: dict, name: str, default: str) -> str:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    if raw.lower() != "off":
        from limits import parse_many

        try:
            parse_many(raw)
        except ValueError:
            raise SystemExit(f"{name} must be a rate such as 60/minute (or off), not {raw!r}") from None
    return raw


def _seconds(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise SystemExit(f"{name} must be a positive number of seconds, not {raw!r}")
    return value


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{name} must be true or false, not {raw!r}")


def _schedule(raw: str | None) -> tuple[int, ...]:
    if not raw:
        return (5, 60, 300, 1800, 7200, 21600, 43200, 86400, 86400)
    try:
        values = tuple(int(float(x)) for x in raw.split(",") if x.strip())
    except ValueError:
        raise SystemExit(f"EXCHANGE_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, not {raw!r}") from None
    if not values or any(v < 0 for v in values):
        raise SystemExit("EXCHANGE_WEBHOOK_RETRY_SCHEDULE needs at least one non-negative number")
    return values


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    broker_url: str
    public_url: str = "http://127.0.0.1:8000"
    token_audience: str = "exchange-api"
    token_ttl_seconds: int = 900
    max_deposit_bytes: int = 4 * 1024**3
    retention_days: int = 3650
    webhook_allow_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Seconds between webhook attempts; the default spreads 10 attempts over about three days.
    webhook_retry_schedule: tuple[int, ...] = (5, 60, 300, 1800, 7200, 21600, 43200, 86400, 86400)
    webhook_lease_seconds: int = 60
    smtp_url: str | None = None
    mail_from: str = "exchange@localhost"
    overdue_days: int = 120
    # A published outbox event that no worker processed within this many seconds is published again.
    outbox_republish_seconds: int = 300
    log_level: str = "INFO"
    # Rate limits on the credential checks, in the ``limits`` library's notation ("60/minute",
    # "10 per minute; 100 per hour"), or "off". Per client address (as uvicorn sees it: behind a
    # proxy set FORWARDED_ALLOW_IPS) and per account (the username or client_id sent).
    signin_limit_per_address: str = "60/minute"
    signin_limit_per_account: str = "10/minute"
    token_limit_per_address: str = "300/minute"
    token_limit_per_client: str = "60/minute"
    # Where the counts are kept; unset: the broker's Redis when the broker is Redis, else in memory.
    rate_limit_storage_url: str | None = None

    # Slow clients (exchange/timeouts.py): the request line and headers must arrive within
    # header_timeout_seconds; a body that stops for body_idle_timeout_seconds, or keeps coming
    # slower than body_min_rate_bytes a second, is cut (408).
    header_timeout_seconds: float = 20.0
    body_idle_timeout_seconds: float = 30.0
    body_min_rate_bytes: int = 500
    # /readyz also requires a worker that consumes (a heartbeat; `exchange serve` turns it on).
    ready_requires_worker: bool = False

    @property
    def rate_limit_storage(self) -> str:
        if self.rate_limit_storage_url:
            return self.rate_limit_storage_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return "memory://"

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def embedded(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("EXCHANGE_HOME") or ".exchange").resolve()
        values = dict(
            home=home,
            database_url=env.get("EXCHANGE_DATABASE_URL") or f"sqlite:///{home / 'exchange.db'}",
            storage_url=env.get("EXCHANGE_STORAGE_URL") or f"file://{home / 'blobs'}",
            broker_url=env.get("EXCHANGE_BROKER_URL") or f"filesystem://{home / 'broker'}",
            public_url=env.get("EXCHANGE_PUBLIC_URL") or "http://127.0.0.1:8000",
            token_audience=env.get("EXCHANGE_TOKEN_AUDIENCE") or "exchange-api",
            token_ttl_seconds=_int(env, "EXCHANGE_TOKEN_TTL_SECONDS", 900),
            max_deposit_bytes=_int(env, "EXCHANGE_MAX_DEPOSIT_BYTES", 4 * 1024**3),
            retention_days=_int(env, "EXCHANGE_RETENTION_DAYS", 3650),
            webhook_allow_hosts=tuple(h.strip() for h in (env.get("EXCHANGE_WEBHOOK_ALLOW_HOSTS") or "").split(",") if h.strip()),
            webhook_retry_schedule=_schedule(env.get("EXCHANGE_WEBHOOK_RETRY_SCHEDULE")),
            webhook_lease_seconds=_int(env, "EXCHANGE_WEBHOOK_LEASE_SECONDS", 60),
            smtp_url=env.get("EXCHANGE_SMTP_URL") or None,
            mail_from=env.get("EXCHANGE_MAIL_FROM") or "exchange@localhost",
            overdue_days=_int(env, "EXCHANGE_OVERDUE_DAYS", 120),
            outbox_republish_seconds=_int(env, "EXCHANGE_OUTBOX_REPUBLISH_SECONDS", 300),
            log_level=env.get("EXCHANGE_LOG_LEVEL") or "INFO",
            signin_limit_per_address=_limit(env, "EXCHANGE_SIGNIN_LIMIT_PER_ADDRESS", "120/minute"),
            signin_limit_per_account=_limit(env, "EXCHANGE_SIGNIN_LIMIT_PER_ACCOUNT", "10/minute"),
            token_limit_per_address=_limit(env, "EXCHANGE_TOKEN_LIMIT_PER_ADDRESS", "1200/minute"),
            token_limit_per_client=_limit(env, "EXCHANGE_TOKEN_LIMIT_PER_CLIENT", "300/minute"),
            rate_limit_storage_url=env.get("EXCHANGE_RATE_LIMIT_STORAGE_URL") or None,
            header_timeout_seconds=_seconds(env, "EXCHANGE_HEADER_TIMEOUT_SECONDS", 20.0),
            body_idle_timeout_seconds=_seconds(env, "EXCHANGE_BODY_IDLE_TIMEOUT_SECONDS", 30.0),
            body_min_rate_bytes=max(0, _int(env, "EXCHANGE_BODY_MIN_RATE_BYTES", 500)),
            ready_requires_worker=_bool(env, "EXCHANGE_READY_REQUIRES_WORKER", False),
        )
        values.update(overrides)
        return cls(**values)
