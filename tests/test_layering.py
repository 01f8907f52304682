"""The layers of docs/architecture.md hold: which package may import which, and no import cycles.

Imports are read with ``ast`` (``devtools/imports.py``), wherever they stand: module level,
inside functions, under ``TYPE_CHECKING``. The first tests run the checker on a tiny tree
written here, so a checker that stopped seeing imports would fail them too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.imports import cycles, layer_violations, module_graph, read_imports

ROOT = Path(__file__).resolve().parents[1]

#: Each package → the packages of ours it may import (besides itself). Read with the picture
#: in docs/architecture.md; bench/, scripts/ and tests/ may import anything.
ALLOWED: dict[str, set[str]] = {
    "features": set(),
    "models": {"features"},
    "pipelines": {"features", "models"},
    "serving": {"features", "models"},
    "simulation": {"features"},
    "storefront": set(),
    "devtools": {"serving"},  # devtools.shop_db only: set-up rows straight into the tables
}
PACKAGES = sorted(ALLOWED)
#: Libraries of the web app and the orchestrator that the pure layers never import.
NOT_IN_PURE_LAYERS = {"dagster", "fastapi", "starlette", "uvicorn"}

#: Rules that hold only once the other parts of issue 19 are merged (strict: they fail today;
#: the coordinator removes the mark when merging the part named).
PENDING: dict[str, str] = {}


def _pending(name: str):
    if name in PENDING:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=PENDING[name]))
    return name


@pytest.fixture(scope="module")
def imports():
    return read_imports(ROOT, PACKAGES)


# ------------------------------------------------------------------------- the checker itself


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_finds_cycles_through_local_relative_and_type_checking_imports(tmp_path):
    _write(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "def f():\n    from low import b\n",  # function-local
            "low/b.py": "from . import c\n",  # relative
            "low/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import low.a\n",
            "low/d.py": "import low.a\n",  # into the cycle, not part of it
        },
    )
    graph = module_graph(read_imports(tmp_path, ["low"]))
    assert graph["low.a"] == {"low.b"}
    assert graph["low.b"] == {"low.c"}
    assert cycles(graph) == [["low.a", "low.b", "low.c"]]
    del graph["low.c"]
    assert cycles(graph) == []


def test_checker_reports_an_import_of_a_layer_not_allowed(tmp_path):
    _write(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/util.py": "import json\n",
            "high/__init__.py": "from low.util import dumps\n",
            "high/deep/mod.py": "def f():\n    from ...low import util\n",
        },
    )
    imports = read_imports(tmp_path, ["low", "high"])
    assert layer_violations(imports, "high", {"low"}) == []
    found = layer_violations(imports, "low", set())
    assert found == []
    wrong = layer_violations(imports, "high", set())
    assert [(i.importer, i.target, i.line) for i in wrong] == [
        ("high", "low.util", 1),
        ("high.deep.mod", "low.util", 2),
    ]
    assert all(not i.ours for i in imports["low.util"])  # json: a library, never a layer


# ------------------------------------------------------------------------------- the project


@pytest.mark.parametrize("package", [_pending(f"layers-{p}") for p in PACKAGES])
def test_package_imports_only_the_layers_it_may(imports, package: str) -> None:
    name = package.removeprefix("layers-")
    wrong = layer_violations(imports, name, ALLOWED[name])
    assert not wrong, f"{name} may import {sorted(ALLOWED[name]) or 'nothing of ours'}:\n" + (
        "\n".join(map(str, wrong))
    )


@pytest.mark.parametrize("package", [_pending(f"cycles-{p}") for p in PACKAGES])
def test_no_import_cycles_inside_a_package(imports, package: str) -> None:
    name = package.removeprefix("cycles-")
    graph = {
        m: {t for t in targets if t.split(".")[0] == name}
        for m, targets in module_graph(imports).items()
        if m.split(".")[0] == name
    }
    assert cycles(graph) == []


def test_no_import_cycles_between_packages(imports) -> None:
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, targets in module_graph(imports).items():
        graph[module.split(".")[0]] |= {t.split(".")[0] for t in targets}
    for package in graph:
        graph[package].discard(package)
    assert cycles(graph) == []


def test_product_packages_import_no_tooling(imports) -> None:
    tooling = {"devtools", "tests", "bench", "scripts"}
    wrong = [
        str(i)
        for module, found in imports.items()
        if module.split(".")[0] != "devtools"
        for i in found
        if i.root in tooling
    ]
    assert wrong == []


@pytest.mark.parametrize("package", ["features", "models"])
def test_pure_layers_use_no_web_or_orchestration_library(imports, package: str) -> None:
    wrong = [
        str(i)
        for module, found in imports.items()
        if module.split(".")[0] == package
        for i in found
        if i.root in NOT_IN_PURE_LAYERS
    ]
    assert wrong == []
