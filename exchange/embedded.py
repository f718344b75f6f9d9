"""The Celery worker that ``exchange serve`` runs beside the API on the embedded default, kept
alive: when it exits for any reason but our asking, it is started again after a back-off
(1 s, doubling up to a minute; back to 1 s once a worker has run for a minute), each restart
logged and counted in ``/metrics``. ``/readyz`` asks :meth:`EmbeddedWorker.check`.

The worker leads a process group of its own, with the scheduler process Celery forks for
``--beat``: when the worker dies, whatever is left of its group is killed before a new one
starts (an orphaned scheduler would go on sending the periodic tasks twice). Since signals to
``exchange serve``'s group then miss the worker, the worker ends itself when ``exchange serve``
is gone (:func:`exit_with_parent`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

from workers import heartbeat

from . import metrics
from .processes import terminate
from .settings import Settings

log = logging.getLogger(__name__)

PARENT_ENV = "EXCHANGE_EMBEDDED_PARENT"

RESTARTS = metrics.REGISTRY.counter(
    "exchange_embedded_worker_restarts_total",
    "Times `exchange serve` restarted its embedded worker after it exited unasked (embedded default only).")
UP = metrics.REGISTRY.gauge(
    "exchange_embedded_worker_up", "1 while the embedded worker's process runs, 0 while it is down or restarting.")
RESTARTS.inc(0)  # shown as 0 from the start, as Prometheus expects of a counter


class EmbeddedWorker:
    def __init__(self, settings: Settings, *, backoff: tuple[float, float] = (1.0, 60.0), stable_after: float = 60.0,
                 command: list[str] | None = None):
        self.settings = settings
        self.command = command or [sys.executable, "-m", "exchange.cli", "worker", "--beat", "--pool=solo",
                                   "--concurrency=1"]
        self.backoff, self.stable_after = backoff, stable_after
        self.restarts = 0
        self.last_exit: int | None = None
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- state ------------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def check(self) -> None:
        """Raise unless the worker's process runs (``/readyz``; the heartbeat tells whether it
        consumes)."""
        if not self.running:
            raise RuntimeError(f"the embedded worker is not running (it exited with status {self.last_exit}; "
                               f"restarts so far: {self.restarts})")

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> EmbeddedWorker:
        self._spawn()
        self._thread = threading.Thread(target=self._supervise, name="embedded-worker", daemon=True)
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen | None:
        with self._lock:
            if self._stopping.is_set():
                return None
            log_path = self.settings.home / "worker.log"
            with open(log_path, "ab") as out:
                self._proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT, process_group=0,
                                              env={**os.environ, PARENT_ENV: str(os.getpid())})
            UP.set(1)
            return self._proc

    def _supervise(self) -> None:
        delay = self.backoff[0]
        proc = self._proc
        while proc is not None:
            started = time.monotonic()
            code = proc.wait()
            UP.set(0)
            self.last_exit = code
            _end_group(proc.pid)
            try:
                heartbeat.forget(self.settings.broker_url, heartbeat.node_name(proc.pid))
            except Exception:  # noqa: BLE001 - it goes stale instead
                pass
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= self.stable_after:
                delay = self.backoff[0]
            log.error("the embedded worker (pid %d) exited with status %s; starting it again in %.0f s "
                      "(see %s)", proc.pid, code, delay, self.settings.home / "worker.log")
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.backoff[1])
            proc = self._spawn()
            if proc is not None:
                self.restarts += 1
                RESTARTS.inc()
                log.warning("embedded worker restarted (pid %d, restart %d)", proc.pid, self.restarts)

    def stop(self, timeout: float = 20) -> None:
        """Stop supervising, then the worker: SIGTERM (it finishes its task), then SIGKILL."""
        with self._lock:
            self._stopping.set()
            proc = self._proc
        if proc is not None:
            terminate(proc, timeout)
            _end_group(proc.pid)
        if self._thread is not None:
            self._thread.join(timeout=5)
        UP.set(0)


def _end_group(pgid: int) -> None:
    """Kill what is left of a worker's process group, and reap it if it became our child."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return  # none of them is ours to reap (init reaps them)
        if pid == 0:
            time.sleep(0.05)


def exit_with_parent() -> None:
    """In the embedded worker's process: stop (as on SIGTERM) once the ``exchange serve`` that
    started it is gone, even killed outright."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1)
        log.warning("exchange serve (pid %s) is gone: the embedded worker stops", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="embedded-parent-watch", daemon=True).start()
