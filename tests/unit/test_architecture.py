"""The import contracts of pyproject.toml ([tool.importlinter], run by ``make lint``),
what import-linter cannot see (app.py is a module, not a package), and a ratchet on the
routes that still reach a repository through the container."""

from __future__ import annotations

import ast
import tomllib
from collections import Counter
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


# Routes in app.py that still use a repository from the container (attribute access,
# which no import contract sees). Moving their work into a service verb shrinks this
# list; a route that adds a use fails here.
ROUTES_STILL_USING_A_REPOSITORY = Counter(
    {
        ("_start_job", "dataset_repo"): 1,
        ("audit", "audit_repo"): 1,
        ("bulk_action", "dataset_repo"): 1,
        ("dataset_scope", "dataset_repo"): 1,
        ("estimate", "dataset_repo"): 2,
        ("generate_all", "dataset_repo"): 1,
        ("get_template", "dataset_repo"): 1,
        ("list_jobs", "dataset_repo"): 1,
        ("list_jobs", "job_repo"): 2,
        ("list_messages", "notification_repo"): 1,
        ("list_subscriptions", "notification_repo"): 1,
        ("subscribe", "notification_repo"): 1,
    }
)


def test_no_route_reaches_a_repository_beyond_the_known_list() -> None:
    uses: Counter[tuple[str, str]] = Counter()
    for fn in ast.walk(ast.parse((ROOT / "app.py").read_text())):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(fn):
                if isinstance(node, ast.Attribute) and node.attr.endswith("_repo"):
                    uses[(fn.name, node.attr)] += 1
    grown = uses - ROUTES_STILL_USING_A_REPOSITORY
    assert not grown, f"new repository use in a route (call a service verb): {dict(grown)}"
