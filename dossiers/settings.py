"""Settings from the environment (``pydantic-settings``): one typed, validated ``Settings``
object. Unset (or empty), they give the embedded default: an SQLite file, a local directory and a
Celery broker that needs no server, all under ``EXCHANGE_HOME``. Each field ``x`` is read from
``EXCHANGE_X``; a value that does not parse raises ``SettingsError`` naming the variable."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

PREFIX = "EXCHANGE_"
DEFAULT_RETRY_SCHEDULE = (5, 60, 300, 1800, 7200, 21600, 43200, 86400, 86400)


class SettingsError(ValueError):
    """A setting that cannot be used; the message names its environment variable."""


# The environment from_env reads (os.environ unless a mapping is given).
_environment: ContextVar[Mapping[str, str] | None] = ContextVar("exchange_settings_env", default=None)


class _Environment(EnvSettingsSource):
    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _environment.get()
        return parse_env_vars(os.environ if env is None else env, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


def _must(what: str) -> Any:
    """The phrase a refusal uses: "EXCHANGE_X must be <what>, not '…'"."""
    return {"must": what}


WholeNumber = Annotated[int, Field(json_schema_extra=_must("a whole number"))]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False, json_schema_extra=_must("a positive number of seconds"))]
Limit = Annotated[str, Field(json_schema_extra=_must("a rate such as 60/minute (or off)"))]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_ignore_empty=True, case_sensitive=False, frozen=True,
                                      extra="forbid")

    home: Path = Path(".exchange")
    # Derived from home when unset.
    database_url: str = ""
    storage_url: str = ""
    broker_url: str = ""
    public_url: str = "http://127.0.0.1:8000"
    token_audience: str = "exchange-api"
    token_ttl_seconds: WholeNumber = 900
    max_deposit_bytes: WholeNumber = 4 * 1024**3
    retention_days: WholeNumber = 3650
    webhook_allow_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Seconds between webhook attempts; the default spreads 10 attempts over about three days.
    webhook_retry_schedule: Annotated[
        tuple[int, ...], NoDecode,
        Field(json_schema_extra=_must("comma-separated seconds, at least one and none negative")),
    ] = DEFAULT_RETRY_SCHEDULE
    webhook_lease_seconds: WholeNumber = 60
    smtp_url: str | None = None
    mail_from: str = "exchange@localhost"
    overdue_days: WholeNumber = 120
    # A published outbox event that no worker processed within this many seconds is published again.
    outbox_republish_seconds: WholeNumber = 300
    log_level: str = "INFO"
    # Rate limits on the credential checks, in the ``limits`` library's notation ("60/minute",
    # "10 per minute; 100 per hour"), or "off". Per client address (as uvicorn sees it: behind a
    # proxy set FORWARDED_ALLOW_IPS) and per account (the username or client_id sent).
    signin_limit_per_address: Limit = "120/minute"
    signin_limit_per_account: Limit = "10/minute"
    token_limit_per_address: Limit = "1200/minute"
    token_limit_per_client: Limit = "300/minute"
    # Where the counts are kept; unset: the broker's Redis when the broker is Redis, else in memory.
    rate_limit_storage_url: str | None = None

    # Slow clients (exchange/timeouts.py): the request line and headers must arrive within
    # header_timeout_seconds; a body that stops for body_idle_timeout_seconds, or keeps coming
    # slower than body_min_rate_bytes a second, is cut (408).
    header_timeout_seconds: Seconds = 20.0
    body_idle_timeout_seconds: Seconds = 30.0
    body_min_rate_bytes: WholeNumber = 500
    # /readyz also requires a worker that consumes (a heartbeat; `exchange serve` turns it on).
    ready_requires_worker: Annotated[bool, Field(json_schema_extra=_must("true or false"))] = False

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then the environment; no .env file, no secrets directory.
        return init_settings, _Environment(settings_cls)

    @field_validator("webhook_allow_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(h.strip() for h in value.split(",") if h.strip())
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                numbers = [float(x) for x in value.split(",") if x.strip()]
            except ValueError:
                raise ValueError("not numbers") from None
            if not all(math.isfinite(x) for x in numbers):
                raise ValueError("not finite")
            value = tuple(int(x) for x in numbers)
        return value

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_values(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(v < 0 for v in value):
            raise ValueError("needs at least one non-negative number")
        return value

    @field_validator("signin_limit_per_address", "signin_limit_per_account", "token_limit_per_address",
                     "token_limit_per_client")
    @classmethod
    def _limit(cls, value: str) -> str:
        value = value.strip()
        if value.lower() != "off":
            from limits import parse_many

            parse_many(value)  # ValueError when it is not a rate
        return value

    @field_validator("body_min_rate_bytes")
    @classmethod
    def _rate(cls, value: int) -> int:
        return max(0, value)

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        home = self.home.resolve()
        object.__setattr__(self, "home", home)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{home / 'exchange.db'}")
        if not self.storage_url:
            object.__setattr__(self, "storage_url", f"file://{home / 'blobs'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", f"filesystem://{home / 'broker'}")
        return self

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
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """The settings ``env`` gives (the process environment when None), with ``overrides``
        (field names) taking precedence. Raises ``SettingsError`` for a value it cannot use."""
        token = _environment.set(dict(os.environ if env is None else env))
        try:
            return cls(**overrides)
        except ValidationError as exc:
            raise _refusal(exc) from None
        finally:
            _environment.reset(token)

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` (validated like the rest)."""
        try:
            return type(self).model_validate(self.model_dump() | changes)
        except ValidationError as exc:
            raise _refusal(exc) from None


def variable(field: str) -> str:
    """The environment variable that sets ``field``."""
    return PREFIX + field.upper()


def _refusal(exc: ValidationError) -> SettingsError:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    info = Settings.model_fields.get(field)
    extra = info.json_schema_extra if info is not None else None
    must = extra.get("must") if isinstance(extra, dict) else None
    if field not in Settings.model_fields:
        return SettingsError(f"no setting named {field!r}")
    raw = error.get("input")
    if must:
        return SettingsError(f"{variable(field)} must be {must}, not {raw!r}")
    return SettingsError(f"{variable(field)}: {error['msg']}, not {raw!r}")
