"""Running the server beside its children: the embedded worker started, stopped and SIGTERM
turned into an orderly exit. Shared by ``exchange serve`` (exchange/cli.py) and ``exchange demo``
(exchange/demo/seeder.py), so that neither imports the other."""

from __future__ import annotations

import signal
import subprocess
from contextlib import contextmanager

from .settings import Settings


@contextmanager
def exit_on_sigterm():
    """uvicorn shuts down gracefully on SIGTERM and then raises the signal again; with the
    default handler that would kill this process before its ``finally`` blocks stop the
    embedded worker. Turn the re-raised signal into ``SystemExit`` instead."""
    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_process(proc, timeout: float = 20) -> None:
    """Stop a child process: SIGTERM (a Celery worker finishes its task), then SIGKILL. An
    embedded worker is stopped with its supervision."""
    from .embedded import EmbeddedWorker

    if isinstance(proc, EmbeddedWorker):
        proc.stop(timeout)
        return
    terminate(proc, timeout)


def terminate(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_embedded_worker(settings: Settings):
    """On the embedded default, notifications flow through a real Celery worker (with its
    scheduler) beside the API, over the file-system broker: the same code paths as production.
    It is supervised: restarted with a back-off whenever it exits unasked (exchange/embedded.py)."""
    from .embedded import EmbeddedWorker

    return EmbeddedWorker(settings).start()
