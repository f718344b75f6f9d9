"""Scheduled maintenance as Celery tasks: integrity scrub, orphan sweep, statistics (the
services are in :mod:`dossiers.scrub` and :mod:`dossiers.stats`)."""

from __future__ import annotations

from dataclasses import asdict

from dossiers import scrub as scrub_module
from dossiers import stats

from .app import celery_app
from .base import ExchangeTask, context


@celery_app.task(name="integrity.scrub", base=ExchangeTask)
def scrub() -> dict:
    ctx = context()
    return asdict(scrub_module.scrub(ctx.session_factory, ctx.store))


@celery_app.task(name="integrity.sweep_orphans", base=ExchangeTask)
def sweep_orphans() -> dict:
    ctx = context()
    return asdict(scrub_module.sweep_orphans(ctx.session_factory, ctx.store))


@celery_app.task(name="stats.rollup", base=ExchangeTask)
def rollup() -> int:
    return stats.rollup(context().session_factory)
