"""Structural rules of the worker side (issue 10, item 3): domain services and their errors
live in ``dossiers/``; ``workers/`` holds the Celery app and its tasks; the API reaches the
workers only through the entry points named here; side effects after a commit go through the
typed hook of ``dossiers/aftercommit.py``, not a string key in ``session.info``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from dossiers import errors as domain_errors
from dossiers.aftercommit import after_commit, pending
from dossiers.models import Office

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exchange", "dossiers", "crypto", "workers", "migrations", "tests", "bench")

# What ``exchange`` may import from ``workers``: module -> names ("*": the module itself).
WORKER_ENTRY_POINTS: dict[str, set[str]] = {
    # The Celery app: built, configured, its broker prepared and pinged, its queue measured.
    "workers.app": {"create_celery", "configure", "prepare_broker", "broker_ping", "queue_depth"},
    # Enqueueing: the relay (exchange/relay.py) hands outbox events and after-commit tasks to
    # the broker with the workers' own publishing policy.
    "workers.outbox": {"publish_event", "relay_once", "PUBLISH_RETRY", "REPUBLISH_AFTER"},
    # The request id that each enqueued task carries in its headers.
    "workers.logs": {"request_id"},
    # Whether a worker consumes: /readyz reads the heartbeats, the embedded supervisor forgets
    # a dead worker's beat.
    "workers.heartbeat": {"*"},
}


def _is_module(name: str) -> bool:
    return (ROOT / Path(*name.split("."))).with_suffix(".py").exists() or (ROOT / Path(*name.split("."))).is_dir()


def worker_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every import of ``workers`` in ``path``; a module imported whole
    (``import workers.x``, ``from workers import x``) is (``workers.x``, "*")."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, "*") for a in node.names if a.name.split(".")[0] == "workers"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "workers":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.append((sub, "*") if _is_module(sub) else (node.module, a.name))
    return out


def test_exchange_imports_from_workers_only_its_entry_points():
    found, offenders = set(), []
    for p in sorted((ROOT / "exchange").rglob("*.py")):
        for module, name in worker_imports(p):
            found.add((module, name))
            allowed = WORKER_ENTRY_POINTS.get(module, set())
            if name not in allowed and "*" not in allowed:
                offenders.append(f"{p.relative_to(ROOT)} imports {name} from {module}")
    assert offenders == []
    # The walk sees real imports (the app builds its Celery app), and every entry point named
    # above still exists, so the list cannot go stale unnoticed.
    assert ("workers.app", "create_celery") in found
    for module, names in WORKER_ENTRY_POINTS.items():
        mod = importlib.import_module(module)
        assert all(name == "*" or hasattr(mod, name) for name in names), module


def test_the_entry_point_rule_catches_a_service_import(tmp_path):
    bad = tmp_path / "handler.py"
    bad.write_text("from workers import notify\nfrom workers.outbox import relay_once, _claimed\n")
    assert worker_imports(bad) == [("workers.notify", "*"), ("workers.outbox", "relay_once"),
                                   ("workers.outbox", "_claimed")]


DOMAIN_ERROR_NAMES = {name for name, value in vars(domain_errors).items()
                      if isinstance(value, type) and issubclass(value, domain_errors.DomainError)}


def domain_errors_defined_in(path: Path) -> list[str]:
    """Classes that are domain errors: derived from one of ``dossiers.errors``, or exceptions
    carrying a problem ``code`` of their own (as the webhook guard's refusals once did)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
        has_code = any(isinstance(s, ast.Assign) and any(
            (isinstance(t, ast.Name) and t.id == "code")
            or (isinstance(t, ast.Tuple) and any(getattr(e, "id", "") == "code" for e in t.elts))
            for t in s.targets) for s in node.body)
        exceptionish = any(b in {"Exception", "ValueError"} or b.endswith(("Error", "Refused")) for b in bases)
        if bases & DOMAIN_ERROR_NAMES or (exceptionish and has_code):
            out.append(node.name)
    return out


def test_workers_define_no_domain_errors():
    offenders = {str(p.relative_to(ROOT)): names for p in sorted((ROOT / "workers").rglob("*.py"))
                 if (names := domain_errors_defined_in(p))}
    assert offenders == {}
    # ...and the rule sees the errors where they belong.
    assert "WebhookTargetRefused" in domain_errors_defined_in(ROOT / "dossiers" / "errors.py")


def test_the_domain_error_rule_catches_both_kinds(tmp_path):
    bad = tmp_path / "mod.py"
    bad.write_text("class A(InvalidRequest):\n    code, title = 'a', 'A'\n\n"
                   "class B(Exception):\n    code = 'b'\n\nclass C(Exception):\n    pass\n")
    assert domain_errors_defined_in(bad) == ["A", "B"]


def test_no_code_keeps_after_commit_work_under_a_string_key():
    key = "after_commit" + "_tasks"  # spelt apart so this file does not match itself
    offenders = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))
                 if key in p.read_text()]
    assert offenders == []


# --- the typed hook, on both databases -------------------------------------------------------

def _count(stack) -> int:
    with stack.engine.connect() as c:
        return c.execute(sa.text("SELECT count(*) FROM office")).scalar_one()


def test_after_commit_runs_once_after_the_commit_and_never_after_a_rollback(stack):
    ran: list[tuple[str, int]] = []
    # Rolled back: the callable is dropped, so a task never names a row that does not exist.
    with stack.session_factory() as s:
        s.add(Office(code="ZQ", name="Rolled back"))
        s.flush()
        after_commit(s, lambda: ran.append(("rolled back", _count(stack))))
        s.rollback()
        assert pending(s) == []
        # A savepoint that rolls back keeps the outer transaction's callables.
        s.add(Office(code="ZR", name="Committed"))
        s.flush()
        before = _count(stack)
        after_commit(s, lambda: ran.append(("committed", _count(stack))))
        with pytest.raises(RuntimeError), s.begin_nested():
            raise RuntimeError("the savepoint rolls back")
        assert len(pending(s)) == 1 and ran == []
        s.commit()
        s.commit()  # nothing pending any more: runs nothing twice
    # It ran once, after the commit: a new connection already sees the row.
    assert ran == [("committed", before + 1)]


def test_a_failing_after_commit_callable_does_not_undo_the_commit(stack, caplog):
    def boom():
        raise RuntimeError("broker gone")

    with stack.session_factory() as s:
        s.add(Office(code="ZS", name="Kept"))
        s.flush()
        after_commit(s, boom)
        s.commit()
    assert "after-commit work" in caplog.text and "broker gone" in caplog.text
    with stack.engine.connect() as c:
        assert c.execute(sa.text("SELECT name FROM office WHERE code = 'ZS'")).scalar_one() == "Kept"
