"""Dependency rules: features/ and models/ never import dagster, fastapi or serving;
features/ never imports models/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"dagster", "fastapi", "serving", "starlette", "uvicorn"}
RECS_MODULES = sorted(
    [p for p in (ROOT / "models").rglob("*.py") if "search" not in p.relative_to(ROOT).parts]
    + [
        ROOT / "features" / name
        for name in ("interactions.py", "item_stats.py", "cooccurrence.py", "id_map.py")
    ]
)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", RECS_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_forbidden_imports(path: Path) -> None:
    roots = imported_roots(path)
    assert not roots & FORBIDDEN
    if path.parent.name == "features":
        assert "models" not in roots
