"""Work that must wait until a transaction has committed.

A service or a handler that wants a side effect once its rows exist (a Celery task to send,
a relay to wake) calls :func:`after_commit` with a callable. The callable runs after the
session's outermost transaction commits, and never if it rolls back: a task is not queued
for a row that does not exist. The session's owner (the request dependency, a task's unit
of work) commits; whoever registers the callable does not.

The callables run in the committing thread, after the commit: they should be short (hand the
work to a queue or wake a thread) and a failure is logged, not raised, since the transaction
is already committed and the caller can no longer be told.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

AfterCommit = Callable[[], object]

# A private object as the key: nothing else can read or write the pending callables.
_PENDING = object()


def after_commit(session: Session, fn: AfterCommit) -> None:
    """Run ``fn()`` once ``session``'s transaction commits; drop it if the transaction rolls back."""
    pending: list[AfterCommit] = session.info.setdefault(_PENDING, [])
    pending.append(fn)


def pending(session: Session) -> list[AfterCommit]:
    """The callables waiting for ``session``'s commit (tests and diagnostics)."""
    return list(session.info.get(_PENDING, ()))


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    for fn in session.info.pop(_PENDING, ()):
        try:
            fn()
        except Exception:  # committed already: the caller cannot be told, so say so in the log
            log.exception("after-commit work %r failed", fn)


@event.listens_for(Session, "after_transaction_end")
def _drop(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the list is gone already; after a rollback or a close it goes unrun. A
    # savepoint's end leaves the outer transaction, and what it registered, alive.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
