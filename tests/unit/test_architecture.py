"""The import contracts of pyproject.toml ([tool.importlinter], run by ``make lint``),
what import-linter cannot see (app.py is a module, not a package), and the shape of the
routes: blueprints of a few statements that reach no repository."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def under(module: str, packages: list[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_domain_contract_forbids_every_sibling_of_the_domain() -> None:
    """A package added to chalicelib is forbidden to the domain without anyone
    remembering to list it: this fails until it is listed."""
    siblings = {
        f"chalicelib.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "chalicelib").iterdir()
        if (p.is_file() and p.suffix == ".py" and p.stem != "__init__")
        or (p.is_dir() and (p / "__init__.py").exists())
    } - {"chalicelib.domain"}
    forbidden = set(contracts()["domain-pure"]["forbidden_modules"])  # type: ignore[arg-type]
    assert siblings <= forbidden, sorted(siblings - forbidden)


def test_app_imports_no_store_no_aws_internals_and_no_local_stack() -> None:
    banned = ["chalicelib.store", "pynamodb", "botocore", "devstack", "moto"]
    bad = sorted(m for m in imported_modules(ROOT / "app.py") if under(m, banned))
    assert bad == []


ROUTE_MODULES = [ROOT / "app.py", *sorted((ROOT / "chalicelib" / "api" / "routes").glob("*.py"))]


def route_functions() -> list[tuple[str, ast.FunctionDef]]:
    """Every function registered as a route (``@bp.route`` / ``@app.route``)."""
    found = []
    for path in ROUTE_MODULES:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call)
                and isinstance(d.func, ast.Attribute)
                and d.func.attr == "route"
                for d in node.decorator_list
            ):
                found.append((path.name, node))
    return found


def test_the_routes_are_blueprints_and_app_py_only_wires_them() -> None:
    in_app = [fn.name for name, fn in route_functions() if name == "app.py"]
    assert in_app == []
    assert len(route_functions()) >= 50  # every route of the API, found in the blueprints


def test_no_route_reaches_a_repository() -> None:
    """Routes call service verbs; a repository (``c.*_repo``) behind a route is the
    route doing a service's work (attribute access, which no import contract sees)."""
    uses = sorted(
        f"{name}:{fn.name} uses {node.attr}"
        for name, fn in route_functions()
        for node in ast.walk(fn)
        if isinstance(node, ast.Attribute) and node.attr.endswith("_repo")
    )
    assert uses == []


def test_every_route_is_a_few_statements() -> None:
    """Parse, call one verb, serialise: a route longer than this is doing a service's work."""
    long_routes = []
    for name, fn in route_functions():
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the docstring
        if len(body) > 8:
            long_routes.append(f"{name}:{fn.name} ({len(body)} statements)")
    assert long_routes == []
