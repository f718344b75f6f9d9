"""The API's side of the outbox: after a commit that wrote events, wake a relay thread that
publishes them at once (the beat schedule's relay catches anything missed). Publishing never
runs on the request's path, so a broker that is down slows no request and loses no event."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from workers.outbox import PUBLISH_RETRY, REPUBLISH_AFTER, publish_event, relay_once

log = logging.getLogger(__name__)

DEBOUNCE = 0.01  # seconds to let a burst of commits gather before one relay pass
UNPROCESSED_CHECK_EVERY = 30.0  # seconds between looks for published but unprocessed events


class Relay:
    def __init__(self, session_factory: sessionmaker, celery, *, interval: float = 2.0,
                 republish_after: timedelta = REPUBLISH_AFTER):
        self._sf = session_factory
        self._republish_after = republish_after
        self._celery = celery
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._tasks: list[tuple[str, list]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.paused = False  # operations and tests may hold the relay (events wait in the outbox)

    def install(self) -> None:
        @event.listens_for(self._sf, "after_commit")
        def _after_commit(session):
            if session.info.pop("outbox_dirty", False):
                self._wake.set()

    def enqueue(self, name: str, args: list) -> None:
        """Send the task ``name`` on the relay's thread, off the caller's path. Call it through
        :func:`dossiers.aftercommit.after_commit`, so that the task goes only once its rows exist."""
        with self._lock:
            self._tasks.append((name, args))
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-relay", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _publish(self, ev) -> None:
        publish_event(self._celery, ev)

    def _run(self) -> None:
        last_check = 0.0
        while not self._stop.is_set():
            woken = self._wake.wait(self._interval)
            if woken:
                # Commits come in bursts under load: one pass publishes the whole burst.
                self._stop.wait(DEBOUNCE)
            self._wake.clear()
            if self._stop.is_set():
                return
            if self.paused:
                continue
            with self._lock:
                tasks, self._tasks = self._tasks, []
            for name, args in tasks:
                try:
                    self._celery.send_task(name, args=args, retry=True, retry_policy=PUBLISH_RETRY)
                except Exception as exc:  # noqa: BLE001 - the periodic dispatcher picks it up
                    log.warning("could not enqueue %s: %s", name, exc)
            # Unprocessed events are looked for now and then, not at every commit.
            republish = None
            if time.monotonic() - last_check >= min(UNPROCESSED_CHECK_EVERY, self._republish_after.total_seconds()):
                republish, last_check = self._republish_after, time.monotonic()
            try:
                while relay_once(self._sf, self._publish, republish_after=republish) >= 200:
                    republish = None
            except Exception as exc:  # noqa: BLE001 - keep relaying; events stay in the outbox
                log.warning("outbox relay failed: %s", exc)
