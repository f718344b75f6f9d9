"""The hourly tracking task: reminders for overdue ASPEC results and expiring agreements
(the services are in :mod:`dossiers.tracking`)."""

from __future__ import annotations

from dossiers import tracking

from .app import celery_app
from .base import ExchangeTask, context


@celery_app.task(name="tracking.run", base=ExchangeTask)
def run() -> dict:
    ctx = context()
    return {"overdue": tracking.overdue_requests(ctx.session_factory, days=ctx.settings.overdue_days),
            "expiring": tracking.expiring_agreements(ctx.session_factory)}
