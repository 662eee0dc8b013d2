"""docs/api.md is generated from the OpenAPI document and must not drift from it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib.api.openapi import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    path = ROOT / "docs" / "generate_api_md.py"
    spec = importlib.util.spec_from_file_location("generate_api_md", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_md_is_up_to_date() -> None:
    rendered = _generator().render()
    committed = (ROOT / "docs" / "api.md").read_text()
    assert committed == rendered, (
        "docs/api.md is out of date with the OpenAPI document: "
        "run .venv/bin/python docs/generate_api_md.py and commit docs/api.md"
    )


def test_api_md_documents_every_route_with_its_fields() -> None:
    text = _generator().render()
    for route in ROUTES:
        assert f"### `{route.method} {route.path}`" in text, route
        assert route.summary in text
        if route.request is not None:
            for name in route.request.model_fields:
                assert f"| `{name}` |" in text, (route.path, name)
    # Every schema linked from a table has its own section.
    for line in text.splitlines():
        start = line.find("](#schema-")
        while start != -1:
            anchor = line[start + 3 : line.index(")", start)]
            assert f'<a id="{anchor}"></a>' in text, anchor
            start = line.find("](#schema-", start + 1)


def test_check_mode_detects_a_stale_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = _generator()
    stale = tmp_path / "api.md"
    stale.write_text("# API reference\n\nold\n")
    monkeypatch.setattr(generator, "API_MD", stale)
    assert generator.main(["--check"]) == 1
    generator.main([])
    assert generator.main(["--check"]) == 0
    assert stale.read_text() == generator.render()


def test_design_rules_cited_in_code_exist_in_the_architecture_doc() -> None:
    import re

    doc = (ROOT / "docs" / "architecture.md").read_text()
    section = doc.split("## Design rules", 1)[1].split("\n## ", 1)[0]
    numbered = {int(n) for n in re.findall(r"^(\d+)\. \*\*", section, re.M)}
    cited: set[int] = set()
    for path in [ROOT / "app.py", *(ROOT / "chalicelib").rglob("*.py")]:
        text = path.read_text()
        assert "DESIGN.md" not in text, path  # no such file: the rules are in architecture.md
        cited |= {int(n) for n in re.findall(r"design rule (\d+)", text)}
    assert cited and cited <= numbered, (cited, numbered)
