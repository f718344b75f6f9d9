"""Structure rules of the typed access scope and the pure policy (issue 10, item 2): whose data a
caller reads is a :class:`dossiers.scope.Scope`, made in one place, required by every service that
lists or reads; ``None`` is no scope; the policy decides on facts and holds no session."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from dossiers import agreements, aspec, audit, families, policy, retrieval, stats
from dossiers.access import Gate, decide_for
from dossiers.scope import Scope

ROOT = Path(__file__).resolve().parent.parent
SCOPED = ("exchange", "dossiers")
SCOPE_NAMES = {"scope", "viewer"}


def sources():
    for pkg in SCOPED:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            yield p, p.read_text()


def test_no_handler_turns_a_principal_into_a_scope_by_hand():
    """The ternary that made ``None`` mean "every office" is written nowhere: a handler that
    forgot it read every office's data. ``Principal.scope`` is the one place."""
    ternary = re.compile(r"None\s+if\s+[\w.]+\.is_admin\b|[\w.]+\.office\s+if\s+not\s+[\w.]+\.is_admin\b")
    offenders = [f"{p.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1}"
                 for p, text in sources() for m in ternary.finditer(text)]
    assert offenders == []


def _annotation(arg: ast.arg) -> str:
    return ast.unparse(arg.annotation) if arg.annotation is not None else ""


def test_no_signature_takes_an_office_or_none_as_its_scope():
    """No handler or service takes its scope (``scope``, ``viewer``) as ``str | None``, where
    ``None`` meant "every office" to some services and "no office" to the policy."""
    optional_text = re.compile(r"^(str\s*\|\s*None|None\s*\|\s*str|Optional\[str\])$")
    offenders = []
    for p, text in sources():
        for node in ast.walk(ast.parse(text, filename=str(p))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                    if arg.arg in SCOPE_NAMES and (arg.annotation is None or optional_text.match(_annotation(arg))):
                        offenders.append(f"{p.relative_to(ROOT)}:{node.lineno} {node.name}({arg.arg}: "
                                         f"{_annotation(arg) or 'unannotated'})")
    assert offenders == []


# Every service that lists or reads another office's data, and the parameter that scopes it.
SERVICES = [
    (agreements.get, "scope"), (agreements.list_for, "scope"),
    (aspec.get, "scope"), (aspec.list_for, "scope"), (aspec.withdraw, "scope"),
    (audit.page, "scope"), (stats.summary, "scope"), (decide_for, "scope"),
]


@pytest.mark.parametrize("fn, param", SERVICES, ids=lambda x: getattr(x, "__qualname__", x))
def test_services_that_list_or_read_require_a_scope(fn, param):
    sig = inspect.signature(fn)
    assert param in sig.parameters and sig.parameters[param].default is inspect.Parameter.empty
    assert sig.parameters[param].annotation in ("Scope", Scope)


CALLS = [
    ("agreements.get", lambda bad: agreements.get(None, "a", scope=bad)),
    ("agreements.list_for", lambda bad: agreements.list_for(None, bad)),
    ("aspec.get", lambda bad: aspec.get(None, "r", scope=bad)),
    ("aspec.list_for", lambda bad: aspec.list_for(None, bad, None)),
    ("aspec.withdraw", lambda bad: aspec.withdraw(None, "r", scope=bad, actor="t")),
    ("audit.page", lambda bad: audit.page(None, scope=bad, action=None, outcome=None, before_seq=None, limit=1)),
    ("stats.summary", lambda bad: stats.summary(None, scope=bad, since=None)),
    ("decide_for", lambda bad: decide_for(None, bad, None, None)),
    ("Gate", lambda bad: Gate(None, bad, "t")),
    ("retrieval.Viewer", lambda bad: retrieval.Viewer("t", bad)),
]


@pytest.mark.parametrize("name, call", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("bad", [None, "SG", ""], ids=["None", "office-code", "empty"])
def test_no_service_accepts_a_bare_none_or_an_office_code_as_a_scope(name, call, bad):
    """Refused before the session is touched (none is given here): ``None`` no longer means
    either "every office" or "no office"."""
    with pytest.raises(TypeError, match="Scope"):
        call(bad)


def test_a_scope_is_made_two_ways_only():
    assert Scope.everything().is_everything and Scope.everything() == Scope.everything()
    sg = Scope.office("SG")
    assert not sg.is_everything and sg.code == "SG" and sg.includes("MY", "SG") and not sg.includes("MY")
    assert Scope.everything().includes("MY")
    for bad in (None, ""):
        with pytest.raises(TypeError):
            Scope.office(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Scope(object(), "SG")
    with pytest.raises(ValueError):
        Scope.everything().code  # noqa: B018
    with pytest.raises(AttributeError):
        sg._code = "MY"  # type: ignore[misc]


def test_the_principal_is_turned_into_a_scope_in_one_place():
    from exchange.access.principals import Principal
    from exchange.deps import ScopeDep, current_scope

    assert Principal("cl_a", None, frozenset({"admin"})).scope == Scope.everything()
    assert Principal("cl_b", "SG", frozenset({"examiner"})).scope == Scope.office("SG")
    assert current_scope(Principal("cl_b", "MY", frozenset({"examiner"}))) == Scope.office("MY")
    assert ScopeDep.__metadata__[0].dependency is current_scope


def _module_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
            if node.level and not node.module:
                names.update("." + a.name for a in node.names)
    return names


def test_the_policy_is_pure_and_outside_the_import_circle():
    """dossiers/policy.py imports no database, no session, no repository (anywhere in the
    module, functions included), and decide takes facts: the facts are gathered in
    dossiers/access.py, the only module where the policy and the repository meet."""
    names = _module_imports(ROOT / "dossiers" / "policy.py")
    assert not {n for n in names if n.split(".")[0] in {"sqlalchemy", "psycopg"}
                or n.lstrip(".") in {"repository", "db", "models", "access", "dossiers.repository"}}, names
    assert not any(n.startswith(".") for n in names), names  # nothing of dossiers at all
    params = inspect.signature(policy.decide).parameters
    assert list(params) == ["viewer", "dossier", "agreements", "at"]
    assert "Session" not in str(inspect.signature(policy.decide)) and "session" not in params
    assert not hasattr(policy, "decide_for")
    assert ".policy" in _module_imports(ROOT / "dossiers" / "repository.py")  # one direction only


def test_one_rule_says_when_an_agreement_is_in_force():
    """The access policy and the ASPEC check both ask policy.in_force; no module writes the
    window comparison again."""
    window = re.compile(r"valid_from\s*<=\s*\w+\s+and\s+\(?\s*\w+\.valid_until is None")
    offenders = [str(p.relative_to(ROOT)) for p, text in sources()
                 if p.name != "policy.py" and window.search(text)]
    assert offenders == []
    assert "in_force" in inspect.getsource(aspec._in_force_aspec)


def test_the_family_is_read_in_one_place():
    """The examiner's pages call no route handler and no private helper of a route module: the
    family comes from dossiers/families.py, a document's answer from exchange/documents.py."""
    text = (ROOT / "exchange" / "web" / "examiner.py").read_text()
    assert not re.search(r"from \.\.routes(\.applications)? import .*\b_\w+", text)
    assert "dossiers_api" not in text and "from ..routes import dossiers" not in text
    assert "families.read(" in text
    for route in ("applications.py",):
        assert "families." in (ROOT / "exchange" / "routes" / route).read_text()
    assert callable(families.read) and callable(families.find)
