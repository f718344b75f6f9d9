"""What every task runs with: settings, a database session factory and the blob store, built
once per process (after Celery forks its pool), and a task base class that logs failures and
runs each task under the request id it was sent with."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cached_property

from celery import Task
from celery.signals import task_postrun, task_prerun

from dossiers.db import make_engine, make_session_factory
from dossiers.settings import Settings
from dossiers.storage import store_from_url

from . import logs

log = logging.getLogger(__name__)

_settings: Settings | None = None
_context: Context | None = None


def use_settings(settings: Settings) -> None:
    global _settings, _context
    _settings = settings
    _context = None


@dataclass
class Context:
    settings: Settings
    pid: int

    @cached_property
    def engine(self):
        return make_engine(self.settings.database_url)

    @cached_property
    def session_factory(self):
        return make_session_factory(self.engine)

    @cached_property
    def store(self):
        return store_from_url(self.settings.storage_url)


def context() -> Context:
    global _context
    if _context is None or _context.pid != os.getpid():
        _context = Context(_settings or Settings.from_env(), os.getpid())
    return _context


class ExchangeTask(Task):
    """Acknowledged late, rejected (so redelivered) when the worker dies; tasks are written to
    be idempotent, so a redelivery does nothing twice."""

    acks_late = True
    reject_on_worker_lost = True

    def on_failure(self, exc, task_id, args, kwargs, einfo):  # pragma: no cover - logging only
        log.error("task %s[%s] failed: %s", self.name, task_id, exc)


# The request id is set around the whole of Celery's trace of a task rather than in
# ``ExchangeTask.__call__``: the tracer writes the task's "succeeded", "retry" and failure lines
# (and calls ``on_failure``) outside ``__call__``, and those lines should name the request too.
# ``task_postrun`` is sent in the tracer's ``finally``, so no id outlives its task, whatever the
# outcome; and a task sent without one runs with none (not the previous task's).

@task_prerun.connect(weak=False, dispatch_uid="exchange-task-request-id-enter")
def _enter_request(task=None, **_kwargs) -> None:
    if isinstance(task, ExchangeTask):
        task.request.exchange_log_token = logs.request_id.set(logs.of_task_request(task.request))


@task_postrun.connect(weak=False, dispatch_uid="exchange-task-request-id-leave")
def _leave_request(task=None, **_kwargs) -> None:
    token = getattr(getattr(task, "request", None), "exchange_log_token", None)
    if token is not None:
        task.request.exchange_log_token = None
        logs.request_id.reset(token)
