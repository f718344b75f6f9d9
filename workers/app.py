"""The Celery application.

One module-level :data:`celery_app` carries the task registry; :func:`configure` gives it the
broker and reliability settings in each process. Database engines and storage clients are
never built at import time: :func:`workers.base.context` builds them per process, after fork.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery

# Longer than the longest task (time limit 600 s) plus any countdown we use (none over a
# minute: long waits are rows with a due time, not countdowns), so a Redis broker does not
# redeliver a task that is still running (ENVIRONMENT.md, Celery).
VISIBILITY_TIMEOUT = 3600

QUEUE = "exchange"

celery_app = Celery("exchange", include=["workers.outbox", "workers.notify", "workers.tracking", "workers.tasks"])
# Every consuming worker beats, so /readyz can tell whether any worker consumes.
celery_app.steps["consumer"].add("workers.heartbeat:Heartbeat")


def _filesystem_folder(url: str) -> Path:
    return Path(urlsplit(url).path or "broker")


def celery_config(broker_url: str) -> dict:
    conf = dict(
        broker_url=broker_url,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=600,
        task_soft_time_limit=540,
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT, "socket_connect_timeout": 3,
                                  "socket_timeout": 5, "max_retries": 1},
        task_default_queue=QUEUE,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        beat_schedule=beat_schedule(),
    )
    if broker_url.startswith("filesystem://"):
        folder = _filesystem_folder(broker_url)
        prepare_broker(broker_url)
        conf["broker_url"] = "filesystem://"
        # kombu's transport with atomic publishing and claiming (workers/fsbroker.py).
        conf["broker_transport"] = "workers.fsbroker:Transport"
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
        }
    return conf


def beat_schedule() -> dict:
    return {
        "outbox-relay": {"task": "outbox.relay", "schedule": 2.0},
        "deliveries-due": {"task": "notify.dispatch_due", "schedule": 5.0},
        "tracking": {"task": "tracking.run", "schedule": 3600.0},
        "integrity-scrub": {"task": "integrity.scrub", "schedule": 3600.0},
        "orphan-sweep": {"task": "integrity.sweep_orphans", "schedule": 6 * 3600.0},
        "statistics": {"task": "stats.rollup", "schedule": 3600.0},
    }


def configure(settings) -> Celery:
    """Point the app at ``settings``' broker and make the settings the workers' own."""
    from . import base

    base.use_settings(settings)
    celery_app.conf.update(celery_config(settings.broker_url))
    return celery_app


def create_celery(broker_url: str) -> Celery:
    """A separate app for a one-off connection (readiness checks)."""
    app = Celery("exchange-probe")
    app.conf.update(celery_config(broker_url))
    return app


@contextmanager
def _redis(url: str):
    """A short-lived Redis client with short time-outs (health checks and metrics)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        yield client
    finally:
        client.close()


def queue_depth(broker_url: str, queue: str = QUEUE) -> int | None:
    """Tasks waiting in the broker's queue, not yet taken by a worker (``None`` for a broker
    whose queue cannot be read this way). Raises when the broker does not answer."""
    if broker_url.startswith(("redis://", "rediss://")):
        with _redis(broker_url) as client:
            pipe = client.pipeline(transaction=False)
            # kombu keeps one list per priority step: the queue's name, then name + "\x06\x16" + step.
            for name in (queue, *(f"{queue}\x06\x16{p}" for p in (3, 6, 9))):
                pipe.llen(name)
            return sum(pipe.execute())
    if broker_url.startswith("filesystem://"):
        folder = _filesystem_folder(broker_url) / "queue"
        return sum(1 for name in os.listdir(folder) if name.endswith(f".{queue}.msg"))
    return None


def prepare_broker(broker_url: str) -> None:
    """Create what a serverless broker needs (the file-system broker's folders)."""
    if broker_url.startswith("filesystem://"):
        folder = _filesystem_folder(broker_url)
        for sub in ("queue", "processed", "control", "heartbeat"):
            (folder / sub).mkdir(parents=True, exist_ok=True)


def broker_ping(broker_url: str) -> None:
    """Raise unless the broker answers (used by ``/readyz``)."""
    if broker_url.startswith(("redis://", "rediss://")):
        with _redis(broker_url) as client:
            client.ping()
    elif broker_url.startswith("filesystem://"):
        folder = _filesystem_folder(broker_url) / "queue"
        if not folder.is_dir():
            raise RuntimeError(f"broker folder {folder} is missing")
    elif broker_url.startswith("memory://"):
        return
    else:
        app = create_celery(broker_url)
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
