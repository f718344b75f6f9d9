"""What ``/readyz`` checks: the database, the blob store and the broker answer; and, where the
settings require it (``exchange serve`` does), that a worker consumes."""

from __future__ import annotations

import time

from sqlalchemy import text

from workers import heartbeat


def _timed(fn) -> dict:
    start = time.perf_counter()
    try:
        fn()
        return {"status": "ok", "ms": round((time.perf_counter() - start) * 1000, 1)}
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure
        return {"status": "down", "error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def check_all(state) -> dict:
    def db():
        with state.engine.connect() as c:
            c.execute(text("SELECT 1"))

    checks = {
        "database": _timed(db),
        "storage": _timed(state.store.ping),
        "broker": _timed(state.broker_ping),
    }
    if state.settings.ready_requires_worker:
        checks["worker"] = _timed(lambda: worker_ping(state))
    return checks


def worker_ping(state) -> None:
    """Raise unless a worker consumes: the embedded worker's process runs (when this process
    supervises it) and some worker's heartbeat is recent (file-system and Redis brokers)."""
    embedded = getattr(state, "embedded_worker", None)
    if embedded is not None:
        embedded.check()
    try:
        heartbeat.require_fresh(state.settings.broker_url)
    except heartbeat.NoHeartbeat:
        return  # a broker without heartbeats: nothing more to learn cheaply
