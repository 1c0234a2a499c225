"""The layer rules, read from the source (every import statement, also those inside functions):
``kolmo`` never imports torch, ``closure``, ``coupling`` or ``cli``; ``coupling`` never imports
``closure`` or ``cli``; ``closure`` never imports ``cli``; so the package graph is acyclic."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "kolmo": {"torch", "closure", "coupling", "cli"},
    "coupling": {"closure", "cli"},
    "closure": {"cli"},
}


def imported_top_levels(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_the_layers_above_it(package: str) -> None:
    bad = {str(p.relative_to(ROOT)): sorted(imported_top_levels(p) & FORBIDDEN[package])
           for p in sorted((ROOT / package).rglob("*.py"))}
    assert {k: v for k, v in bad.items() if v} == {}
