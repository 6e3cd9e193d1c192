"""The one-way dependencies of ARCHITECTURE.md, checked on the source's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "perf_aggregator"
SHARED = {"formats", "clock", "protocol", "config", "telemetry", "heap"}
"""Leaf modules any component may use."""

# component -> components it must never import
FORBIDDEN = {
    "tee": {"exchanges", "polling", "ledger", "metrics", "sessions", "api", "client", "simulator"},
    "metrics": {"ledger", "exchanges", "polling", "sessions", "api", "client", "simulator"},
    "ledger": {"exchanges", "polling", "sessions", "api", "client", "simulator"},
    "exchanges": {"polling", "metrics", "sessions", "api", "client", "simulator"},
    "polling": {"sessions", "api", "client", "simulator"},
    "sessions": {"api", "client", "simulator"},
    "api": {"client", "simulator"},
    "client": {"tee", "exchanges", "polling", "ledger", "metrics", "sessions", "api", "simulator"},
    "simulator": {"tee", "exchanges", "polling", "ledger", "metrics", "sessions", "api", "client"},
}


def imported_components(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "perf_aggregator":
            names.update(f"perf_aggregator.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module)
    return {n.split(".")[1] for n in names if n.startswith("perf_aggregator.")}


@pytest.mark.parametrize("component", sorted(FORBIDDEN))
def test_component_imports_flow_one_way(component: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): imported_components(path) & FORBIDDEN[component]
        for path in (PACKAGE / component).rglob("*.py")
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


def test_enclave_code_never_imports_the_simulator_or_the_client() -> None:
    enclave = ["tee", "exchanges", "polling", "ledger", "metrics", "sessions", "api"]
    for component in enclave:
        for path in (PACKAGE / component).rglob("*.py"):
            assert not imported_components(path) & {"simulator", "client", "demo"}, path


def test_shared_modules_are_leaves() -> None:
    for name in SHARED:
        assert imported_components(PACKAGE / f"{name}.py") <= SHARED - {name}, name
