"""Structure rules for the rooms of the code (issue 10, item 4): no module over 600 lines, no
import circle among the project's modules, and the two programs that are not the server (the
office tool in exchange/office/, the demo in exchange/demo/) reached from the rest only through
the ``exchange`` command. Everything is read with ``ast`` from the files: no import runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exchange", "dossiers", "crypto", "workers")
MAX_LINES = 600


def modules() -> dict[str, Path]:
    """Every module of the four packages by dotted name (a package by its ``__init__``)."""
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(body: list, top_level: bool) -> Iterator[ast.AST]:
    """The statements of a module. With ``top_level``, only those that run when the module is
    imported: not inside a function (its imports run when it is called) nor under ``if
    TYPE_CHECKING``; class bodies, ``if``, ``try`` and ``with`` blocks do run."""
    for node in body:
        yield node
        if top_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if top_level and isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse, top_level)
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _statements([n for n in inner if isinstance(n, (ast.stmt, ast.excepthandler))], top_level)


def imported(name: str, *, top_level: bool) -> set[str]:
    """The dotted names a module imports (relative imports resolved; ``from a import b`` gives
    ``a.b`` when that is a module, else ``a``)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), filename=str(path)).body, top_level):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                out.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module)
    return out


def import_graph(*, top_level: bool) -> dict[str, set[str]]:
    return {name: {m for m in imported(name, top_level=top_level) if m in MODULES and m != name} for name in MODULES}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def test_no_module_is_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in MODULES.values() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
    # ...and the count sees real files: the biggest module is near the limit, not empty.
    assert max(len(p.read_text().splitlines()) for p in MODULES.values()) > MAX_LINES // 2


def test_no_import_circle_among_the_projects_modules():
    """Imports at the top of a module (those that run when it is imported) form no circle.
    An import inside a function is allowed to point back (it runs when the function is
    called, after both modules are loaded), so it is not counted here."""
    graph = import_graph(top_level=True)
    assert circles(graph) == []
    # The graph is real: the command reaches the office verbs, the demo sink the server's deps.
    assert "exchange.office.cli" in graph["exchange.cli"]
    assert "exchange.deps" in graph["exchange.demo.sink"]


def test_the_circle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_cli_and_the_demo_do_not_import_each_other_even_in_functions():
    """The circle item 4 named: the demo took its process helpers from the command; both now
    take them from exchange/processes.py."""
    demo = {m for name in MODULES if name.startswith("exchange.demo") for m in imported(name, top_level=False)}
    assert not {m for m in demo if m == "exchange.cli" or m.startswith("exchange.cli.")}
    assert "exchange.processes" in demo


ROOMS = ("exchange.office", "exchange.demo")


@pytest.mark.parametrize("room", ROOMS)
def test_the_server_reaches_the_office_tool_and_the_demo_only_through_the_command(room):
    """Only the ``exchange`` command (exchange/cli.py) imports the office tool and the demo, at
    any level; the server (app, routes, pages, services, workers) never does. The demo sink
    route lives in exchange/demo/ and is mounted by the demo alone."""
    users = sorted(name for name in MODULES if not name.startswith(ROOMS)
                   for m in imported(name, top_level=False) if m == room or m.startswith(room + "."))
    assert users == ["exchange.cli"]


def test_the_office_tool_needs_no_server():
    """The office tool runs on an office's machine: it uses crypto, the manifest's schema and the
    command-line helpers, never the server's app, routes, database or workers."""
    allowed = ("crypto", "dossiers.schemas", "exchange.clitools", "exchange.office")
    office = {m for name in MODULES if name.startswith("exchange.office") for m in imported(name, top_level=False)}
    project = {m for m in office if m.split(".")[0] in PACKAGES}
    assert sorted(m for m in project if not (m in allowed or m.startswith(tuple(a + "." for a in allowed)))) == []
    assert "crypto.jws" in project


def test_the_demo_sink_is_no_route_of_the_server():
    assert not (ROOT / "exchange" / "routes" / "demo_sink.py").exists()
    assert "exchange.demo.sink" not in set(imported("exchange.app", top_level=False))
