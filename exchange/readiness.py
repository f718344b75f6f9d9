"""What ``/readyz`` checks: the database, the blob store and the broker answer."""

from __future__ import annotations

import time

from sqlalchemy import text


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

    return {
        "database": _timed(db),
        "storage": _timed(state.store.ping),
        "broker": _timed(state.broker_ping),
    }
