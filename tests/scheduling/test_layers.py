"""Infrastructure never imports a domain: ``scheduling/`` knows no export job, export or record."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "skuport"
DOMAINS = (
    "skuport.jobs",
    "skuport.exports",
    "skuport.records",
    "skuport.catalog",
    "skuport.auth",
    "skuport.compat",
    "skuport.console",
)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["scheduling"])
def test_infrastructure_imports_no_domain(package: str) -> None:
    offending = {
        f"{path.relative_to(SRC)}: {name}"
        for path in sorted((SRC / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(DOMAINS)
    }
    assert offending == set()


def test_the_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from skuport.jobs.models import ExportRun\n")
    assert imported_modules(module) == {"skuport.jobs.models"}
