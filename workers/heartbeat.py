"""Worker heartbeats: each consuming worker says so every few seconds, where the API can read it
cheaply (``/readyz`` is polled often).

- File-system broker (embedded default): one file per worker under ``<broker>/heartbeat/``,
  its modification time the last beat.
- Redis broker: one sorted set, ``exchange:workers``, scored by the time of each worker's last
  beat; a readiness check is one ``ZREVRANGE … 0 0 WITHSCORES``.

A beat is sent by a thread that a Celery consumer step starts when the worker begins consuming
and stops when it stops (cleanly or by an unrecoverable error), so a crashed consumer stops
beating even where its process lingers; a killed process simply goes silent. Other brokers have
no heartbeat here (:class:`NoHeartbeat`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

from celery import bootsteps

log = logging.getLogger(__name__)

EVERY = 5.0  # seconds between beats
STALE_AFTER = 20.0  # seconds without a beat from any worker: none consumes
REDIS_KEY = "exchange:workers"
FOLDER = "heartbeat"


class NoHeartbeat(Exception):
    """The broker keeps no worker heartbeats (neither the file-system broker nor Redis)."""


def node_name(pid: int | None = None) -> str:
    """``<pid>@<host>``: one beat per worker process, named so its supervisor can find it."""
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
    return f"{pid or os.getpid()}@{host}"


def _folder(broker_url: str) -> Path:
    from .app import _filesystem_folder

    return _filesystem_folder(broker_url) / FOLDER


def _is_redis(broker_url: str) -> bool:
    return broker_url.startswith(("redis://", "rediss://"))


def beat(broker_url: str, node: str, now: float | None = None) -> None:
    """Record that ``node`` consumes now."""
    now = time.time() if now is None else now
    if broker_url.startswith("filesystem://"):
        folder = _folder(broker_url)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / node
        path.touch()
        os.utime(path, (now, now))
    elif _is_redis(broker_url):
        from .app import _redis

        with _redis(broker_url) as client:
            pipe = client.pipeline(transaction=False)
            pipe.zadd(REDIS_KEY, {node: now})
            pipe.zremrangebyscore(REDIS_KEY, "-inf", now - 3600)  # workers gone for an hour
            pipe.expire(REDIS_KEY, 3600)
            pipe.execute()
    else:
        raise NoHeartbeat(broker_url.split(":", 1)[0])


def forget(broker_url: str, node: str) -> None:
    """Remove ``node``'s beat (it stopped consuming); quiet if there is none."""
    if broker_url.startswith("filesystem://"):
        try:
            (_folder(broker_url) / node).unlink()
        except FileNotFoundError:
            pass
    elif _is_redis(broker_url):
        from .app import _redis

        with _redis(broker_url) as client:
            client.zrem(REDIS_KEY, node)


def last_beat(broker_url: str) -> float | None:
    """Unix time of the most recent beat of any worker on this broker; ``None`` if there is none.
    Raises :class:`NoHeartbeat` for brokers without heartbeats, and the broker's errors."""
    if broker_url.startswith("filesystem://"):
        latest = None
        try:
            entries = list(os.scandir(_folder(broker_url)))
        except FileNotFoundError:
            return None
        for entry in entries:
            try:
                t = entry.stat().st_mtime
            except FileNotFoundError:
                continue  # a worker forgot its beat meanwhile
            latest = t if latest is None else max(latest, t)
        return latest
    if _is_redis(broker_url):
        from .app import _redis

        with _redis(broker_url) as client:
            top = client.zrevrange(REDIS_KEY, 0, 0, withscores=True)
        return float(top[0][1]) if top else None
    raise NoHeartbeat(broker_url.split(":", 1)[0])


def require_fresh(broker_url: str, stale_after: float = STALE_AFTER, now: float | None = None) -> float:
    """Seconds since the last beat; raises ``RuntimeError`` when no worker beat within
    ``stale_after`` seconds."""
    now = time.time() if now is None else now
    last = last_beat(broker_url)
    if last is None:
        raise RuntimeError("no worker has consumed from the broker yet")
    age = max(0.0, now - last)
    if age > stale_after:
        raise RuntimeError(f"no worker heartbeat for {age:.0f} s")
    return age


class Heartbeat(bootsteps.StartStopStep):
    """A consumer step: beats while the worker consumes (see the module's docstring)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, c, **kwargs):
        super().__init__(c, **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._broker_url: str | None = None
        self._node = node_name()

    def start(self, c):
        from .base import context

        self._broker_url = context().settings.broker_url
        try:
            beat(self._broker_url, self._node)
        except NoHeartbeat:
            return
        except Exception as exc:  # noqa: BLE001 - the thread tries again
            log.warning("worker heartbeat failed: %s", exc)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(c,), name="exchange-heartbeat", daemon=True)
        self._thread.start()

    def _run(self, c) -> None:
        while not self._stop.wait(EVERY):
            if c.blueprint.state != bootsteps.RUN or c.connection is None:
                continue  # not consuming now (the consumer is restarting): stay silent
            try:
                beat(self._broker_url or "", self._node)
            except Exception as exc:  # noqa: BLE001 - a broker hiccup: try again at the next beat
                log.warning("worker heartbeat failed: %s", exc)

    def stop(self, c):
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=EVERY + 1)
        self._thread = None
        try:
            forget(self._broker_url or "", self._node)
        except Exception as exc:  # noqa: BLE001 - it goes stale instead
            log.warning("could not remove the worker heartbeat: %s", exc)

    shutdown = stop
