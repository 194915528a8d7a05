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


def test_portfolio_never_imports_reporting():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in (ROOT / "portfolio").rglob("*.py")
        for line, module in _imports(path)
        if _top(module) == "reporting"
    ]
    assert offenders == []


def test_the_architecture_check_catches_a_django_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from django.db import models\nimport numpy\n")
    assert [m for _, m in _imports(probe) if _top(m) in BANNED_IN_ENGINE] == ["django.db"]
