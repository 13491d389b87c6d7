"""The layers import only what docs/architecture.md allows: handlers reach storage via Stores, the domain is pure."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORAGE_LIBRARIES = ("boto3", "botocore", "pynamodb", "chalice")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at the top or inside a function, as (line, dotted name)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_handlers_reach_storage_only_through_stores():
    """chalicelib.tables.stores is the one way in (and the table bootstrap, chalicelib.tables itself)."""
    allowed = ("chalicelib.tables.stores", "chalicelib.tables.create_table", "chalicelib.tables.table_reachable")
    offending = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in modules("chalicelib/handlers") for line, name in imports_of(path)
                 if _within(name, "chalicelib.tables") and name != "chalicelib.tables"
                 and not any(_within(name, a) for a in allowed)]
    assert offending == []


@pytest.mark.parametrize("forbidden", ["chalicelib.tables", "chalicelib.handlers", *STORAGE_LIBRARIES])
def test_the_domain_imports_no_storage_no_http_and_no_aws(forbidden):
    offending = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in modules("chalicelib/domain") for line, name in imports_of(path)
                 if _within(name, forbidden)]
    assert offending == []


def repository_classes() -> set[str]:
    """The classes of chalicelib/tables that reach the table for one tenant (`…Repository`, `…Store`)."""
    return {node.name for path in modules("chalicelib/tables")
            for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Repository", "Store")) and node.name != "Stores"}


def test_only_the_stores_module_builds_repositories():
    """A repository built anywhere else is a second way in; `ctx.stores()` (or `Stores(tenant)`) is the one."""
    repositories = repository_classes()
    assert {"ClientRepository", "ContactRepository"} <= repositories
    built = [f"{path.relative_to(ROOT)}:{node.lineno} builds {node.func.id}"
                      for package in ("chalicelib/handlers", "chalicelib/domain", "chalicelib/local")
             for path in modules(package)
             for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in repositories]
    assert built == []


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The checks above would pass vacuously if lazy imports (inside a function) went unseen."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from chalicelib.tables.clients import ClientRepository\n    import boto3\n")
    assert imports_of(module) == [(2, "chalicelib.tables.clients.ClientRepository"), (3, "boto3")]


def _case_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """The names a module binds to use-case modules (`from chalicelib.domain import client_cases as cases`) and to
    use-case functions (`from chalicelib.domain.client_cases import create_client`)."""
    case_modules, case_functions = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name.endswith("_cases"):
                    case_modules.add(alias.asname or alias.name)
                elif node.module.endswith("_cases"):
                    case_functions.add(alias.asname or alias.name)
    return case_modules, case_functions


def _views(tree: ast.Module) -> list[ast.FunctionDef]:
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Call) and getattr(d.func, "id", None) == "api" for d in node.decorator_list)]


REPOSITORIES = {"clients", "contacts", "settings", "communications", "threads", "inbox", "categories", "segments",
                "facts", "jobs", "imports", "rate_limits", "activity", "portal", "node", "tasks", "associations",
                "idempotency"}  # the attributes of Stores


def _storage_call(func: ast.expr) -> str | None:
    """`<anything>.<repository>.<method>(...)`: a call on one of Stores' repositories."""
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) and func.value.attr in REPOSITORIES:
        return f"{func.value.attr}.{func.attr}"
    return None


def view_calls(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Per function of a blueprint: the use cases it calls (views only), and the repository calls it makes itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    case_modules, case_functions = _case_names(tree)
    views = {view.name for view in _views(tree)}
    out = {}
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)):
        cases, storage = [], []
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in case_functions:
                cases.append(func.id)
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in case_modules:
                cases.append(f"{func.value.id}.{func.attr}")
            elif (call := _storage_call(func)) is not None:
                storage.append(call)
        if cases and function.name in views or storage:
            out[function.name] = (cases if function.name in views else [], storage)
    return out


BLUEPRINTS = sorted((ROOT / "chalicelib/handlers/api").glob("*.py"))


@pytest.mark.parametrize("path", BLUEPRINTS, ids=lambda p: p.stem)
def test_every_view_makes_at_most_one_use_case_call_and_no_storage_call(path):
    calls = view_calls(path)
    assert {view: cases for view, (cases, _) in calls.items() if len(cases) > 1} == {}
    assert {view: storage for view, (_, storage) in calls.items() if storage} == {}


def test_the_view_checker_counts_use_case_calls(tmp_path):
    blueprint = tmp_path / "bp.py"
    blueprint.write_text(
        "from chalicelib.domain import client_cases as cases\n"
        "from chalicelib.domain.contact_cases import add_contact\n"
        "@api(bp, 'GET', '/x', summary='x')\n"
        "def two(ctx):\n    cases.get_client(ctx.stores(), 'a')\n    return add_contact(ctx.stores(), 'a', {})\n"
        "@api(bp, 'GET', '/y', summary='y')\n"
        "def reaches(ctx):\n    return ctx.stores().clients.get('a')\n"
        "def _helper(ctx):\n    stores = ctx.stores()\n    return stores.contacts.page(None)\n")
    assert view_calls(blueprint) == {"two": (["cases.get_client", "add_contact"], []),
                                     "reaches": ([], ["clients.get"]), "_helper": ([], ["contacts.page"])}
