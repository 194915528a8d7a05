"""Layering rules (DESIGN.md "Three layers, one direction"), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BANNED_IN_ENGINE = ("django", "rest_framework", "channels", "django_q", "daphne")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def test_engine_packages_exist_in_every_app():
    for app in ("portfolio", "risk", "reporting"):
        assert (ROOT / app / "engine" / "__init__.py").exists()


def test_no_engine_module_imports_django_or_its_frameworks():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in ROOT.glob("*/engine/**/*.py")
        for line, module in _imports(path)
        if _top(module) in BANNED_IN_ENGINE
    ]
    assert list(ROOT.glob("*/engine/**/*.py")), "no engine modules found"
    assert offenders == []


def test_engine_modules_import_no_service_or_model_code():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in ROOT.glob("*/engine/**/*.py")
        for line, module in _imports(path)
        if _top(module) in ("portfolio", "risk", "reporting") and ".engine" not in module
    ]
    assert offenders == []


def _offenders(app: str, banned: set[str]) -> list[str]:
    """Every import (module level or inside a function, tests included) of ``app`` whose
    top package is in ``banned``."""
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (ROOT / app).rglob("*.py")
        for line, module in _imports(path)
        if _top(module) in banned
    ]


def test_portfolio_never_imports_risk_reporting_or_the_orchestration_above_it():
    assert _offenders("portfolio", {"risk", "reporting", "operations"}) == []


def test_risk_never_imports_reporting_or_the_orchestration_above_it():
    assert _offenders("risk", {"reporting", "operations"}) == []


def test_the_update_path_lives_above_portfolio_and_risk_without_a_registry():
    update = (ROOT / "operations" / "update.py").read_text()
    assert "from risk.services import risk_session_open" in update
    assert not (ROOT / "portfolio" / "services" / "update.py").exists()
    for app in ("portfolio", "risk"):
        apps_py = (ROOT / app / "apps.py").read_text()
        assert "def ready" not in apps_py, f"{app}/apps.py fills something at startup"


def test_the_architecture_check_catches_a_nested_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from risk.services import strategy_resume\n")
    assert [m for _, m in _imports(probe)] == ["risk.services"]


def test_the_architecture_check_catches_a_django_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from django.db import models\nimport numpy\n")
    assert [m for _, m in _imports(probe) if _top(m) in BANNED_IN_ENGINE] == ["django.db"]
