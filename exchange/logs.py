"""Log lines for machines (one JSON object a line) or for people, each naming the request it
belongs to.

``EXCHANGE_LOG_FORMAT`` chooses: ``json`` (the default; what a log shipper reads) or ``text``.
A JSON line holds ``time`` (ISO 8601, UTC, milliseconds), ``level``, ``logger``, ``message``,
``request_id`` (null outside a request or a task sent because of one), ``exception`` (the
traceback) when there is one, and whatever a caller passed as ``extra=``.

The request id is the context variable of :mod:`workers.logs`: the HTTP middleware sets it for
each request and the workers for each task, so the API and the workers share it.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal

from workers.logs import request_id

__all__ = ["FORMATS", "JsonFormatter", "TextFormatter", "configure", "dict_config", "format_from_env", "request_id"]

FORMATS = ("json", "text")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# uvicorn passes a coloured copy of its messages as an extra; it is noise in JSON.
_SKIP = {"color_message", "request_id"}


def _current_id(record: logging.LogRecord) -> str | None:
    return getattr(record, "request_id", None) or request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines in messages are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _current_id(record),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _SKIP and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger [request id] message`` for people reading a terminal."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: Literal["%", "{", "$"] = "%",
                 **kwargs):
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s", datefmt, style,
                         **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        record.request_id = _current_id(record) or "-"
        return super().format(record)


def format_from_env(env: Mapping[str, str] | None = None) -> str:
    """The format ``EXCHANGE_LOG_FORMAT`` names; ValueError for anything but json or text."""
    source = os.environ if env is None else env
    value = (source.get("EXCHANGE_LOG_FORMAT") or "json").strip().lower()
    if value not in FORMATS:
        raise ValueError(f"EXCHANGE_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {value!r}")
    return value


def dict_config(fmt: str, level: str) -> dict:
    """A :func:`logging.config.dictConfig` configuration: one handler on the root logger,
    writing to stderr in ``fmt``; uvicorn's loggers hand their records to it (uvicorn applies
    this same configuration in each of its worker processes)."""
    formatter = {"json": JsonFormatter, "text": TextFormatter}[fmt]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"exchange": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "exchange",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"handlers": [], "propagate": True}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery")},
    }


def configure(fmt: str, level: str) -> dict:
    """Install the configuration in this process; return it (uvicorn takes it as ``log_config``).

    Celery configures logging of its own in a worker unless someone answers its
    ``setup_logging`` signal; answering it keeps every line, Celery's included, in this format."""
    config = dict_config(fmt, level)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)  # warnings (Celery's, deprecations) as log lines in the same format
    from celery.signals import setup_logging

    setup_logging.connect(_keep_ours, weak=False, dispatch_uid="exchange-logging")
    return config


def _keep_ours(**_kwargs) -> None:
    """Celery's ``setup_logging``: the configuration is already in place."""
