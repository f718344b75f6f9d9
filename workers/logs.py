"""The request a piece of work is done for, carried from the HTTP request into the tasks that
follow from it, so that a log line written by a worker names the request that caused it.

The API sets :data:`request_id` for each request (``exchange/app.py``); the outbox stores it
with each event; the relay publishes each event with the event's id set; the
``before_task_publish`` hook below copies whatever id is set into the task message's headers,
and :mod:`workers.base` sets it again while the task runs (so the tasks a task sends carry it
too). The variable lives here rather than in ``exchange/`` because the workers may not import
``exchange/``, and both sides must share the one variable.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from celery.signals import before_task_publish

# The task message header; prefixed so it can never shadow one of Celery's request fields.
HEADER = "exchange_request_id"

request_id: ContextVar[str | None] = ContextVar("exchange_request_id", default=None)


@contextmanager
def bound(rid: str | None) -> Iterator[None]:
    """Run the block with ``rid`` as the current request id (None: no request)."""
    token = request_id.set(rid)
    try:
        yield
    finally:
        request_id.reset(token)


def of_task_request(request) -> str | None:
    """The request id a Celery task request carries. Custom message headers appear as
    attributes of the request in a worker and under ``request.headers`` with ``apply()``."""
    rid = request.get(HEADER) if hasattr(request, "get") else None
    if rid is None:
        rid = (getattr(request, "headers", None) or {}).get(HEADER)
    return rid if isinstance(rid, str) and rid else None


@before_task_publish.connect(weak=False, dispatch_uid="exchange-request-id")
def _stamp_request_id(headers: dict | None = None, **_kwargs) -> None:
    rid = request_id.get()
    if rid and headers is not None:
        headers.setdefault(HEADER, rid)
