"""The dependency direction (docs/architecture.md), checked on the source: the calls engine and the
campaigns never import the desk (only its models, live events and roles), and no module of ours
is imported inside a function (a function-local import hides a cycle instead of fixing it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OURS = ("agentdesk", "calls", "campaigns", "emulators")
# What the engine and the campaigns may take from the desk.
DESK_ALLOWED = {"agentdesk.models", "agentdesk.live", "agentdesk.roles"}


def sources(*packages: str):
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def imports(tree: ast.AST):
    """(line, module imported, inside a function?) for every import in ``tree``: ``import a.b``
    and ``from a.b import c`` import ``a.b``; ``from a import b`` imports ``a.b``."""

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield child.lineno, alias.name, in_function
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if "." in child.module:
                    yield child.lineno, child.module, in_function
                else:
                    for alias in child.names:
                        yield child.lineno, f"{child.module}.{alias.name}", in_function
            yield from walk(child, inner)

    yield from walk(tree, False)


def desk_imports(source: str) -> list[str]:
    """Modules of the desk imported by ``source`` beyond what the engine may use."""
    return [
        module
        for _line, module, _ in imports(ast.parse(source))
        if module.startswith("agentdesk.") and ".".join(module.split(".")[:2]) not in DESK_ALLOWED
    ]


def local_imports(source: str) -> list[str]:
    """Our own modules imported inside a function, except in an AppConfig's ``ready`` (where
    Django wants signal handlers connected)."""
    tree = ast.parse(source)
    ready_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "ready":
            ready_lines |= {n.lineno for n in ast.walk(node) if hasattr(n, "lineno")}
    return [
        f"{line}: {module}"
        for line, module, in_function in imports(tree)
        if in_function and module.split(".")[0] in OURS and line not in ready_lines
    ]


def test_the_engine_and_the_campaigns_never_import_the_desk():
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources("calls", "campaigns")
        for module in desk_imports(path.read_text())
    ]
    assert not offenders, "imports of the desk from below it:\n" + "\n".join(sorted(set(offenders)))


def test_no_module_of_ours_is_imported_inside_a_function():
    offenders = [
        f"{path.relative_to(ROOT)}:{hit}"
        for path in sources(*OURS[:3])
        for hit in local_imports(path.read_text())
    ]
    assert not offenders, "function-local imports of our own modules:\n" + "\n".join(offenders)


def test_the_checks_catch_what_they_are_for():
    assert desk_imports("from agentdesk import desk_views\n") == ["agentdesk.desk_views"]
    assert desk_imports("from agentdesk.services import lease_release\n") == ["agentdesk.services"]
    assert desk_imports("from agentdesk import live\nfrom agentdesk.models import Agent\n") == []
    assert local_imports("def f():\n    from calls import services\n") == ["2: calls.services"]
    assert local_imports("class C:\n    def ready(self):\n        from agentdesk import signals\n") == []
