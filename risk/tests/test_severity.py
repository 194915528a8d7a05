"""One severity scale: defined in risk.engine.severity, every comparison and every
per-severity mapping reads it, and a channel's floor keeps its meaning."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from risk.engine import alert_formats, limits_config
from risk.engine.alert_formats import severity_admits
from risk.engine.severity import (
    LOWEST_SEVERITY,
    SEVERITIES,
    SEVERITY_RANK,
    severity_at_least,
    severity_rank,
)
from risk.models import Severity

ROOT = Path(__file__).resolve().parents[2]


def test_the_scale_runs_from_low_1_to_critical_4():
    assert SEVERITIES == ("critical", "high", "medium", "low")
    assert SEVERITY_RANK == {"low": 1, "medium": 2, "high": 3, "critical": 4}
    assert LOWEST_SEVERITY == "low"


def test_an_unknown_severity_is_an_error_not_the_lowest_level():
    with pytest.raises(ValueError, match="unknown severity 'hgih'"):
        severity_rank("hgih")
    with pytest.raises(ValueError, match="unknown severity"):
        severity_admits("low", "")


@pytest.mark.parametrize("floor", SEVERITIES)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_a_channel_takes_exactly_the_alerts_at_or_above_its_floor(floor, severity):
    # Positions in the most-severe-first tuple: a smaller index is more severe.
    expected = SEVERITIES.index(severity) <= SEVERITIES.index(floor)
    assert severity_admits(floor, severity) is expected
    assert severity_at_least(severity, floor) is expected


def test_a_high_floor_takes_critical_and_high_only():
    taken = [s for s in SEVERITIES if severity_admits("high", s)]
    assert taken == ["critical", "high"]


def test_every_per_severity_mapping_covers_the_scale_exactly():
    for mapping in (
        limits_config.HARSHEST_ACTION,
        limits_config.DEFAULT_ACTIONS,
        alert_formats.SEVERITY_COLOR,
        alert_formats.PAGERDUTY_SEVERITY,
    ):
        assert set(mapping) == set(SEVERITIES)
    assert tuple(Severity.values) == SEVERITIES


def test_a_more_severe_breach_may_take_a_harsher_action():
    ceilings = [limits_config.ACTION_RANK[limits_config.HARSHEST_ACTION[s]] for s in SEVERITIES]
    assert ceilings == sorted(ceilings, reverse=True)
    assert limits_config.action_mismatch("low", "liquidate_all") is not None
    assert limits_config.action_mismatch("critical", "liquidate_all") is None


def test_no_other_module_defines_a_severity_scale():
    defined = []
    for app in ("risk", "reporting", "portfolio", "operations", "quantsite"):
        for path in (ROOT / app).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Assign):
                    names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                    if any(n in ("SEVERITIES", "SEVERITY_RANK") for n in names):
                        defined.append(str(path.relative_to(ROOT)))
    assert defined == ["risk/engine/severity.py", "risk/engine/severity.py"]
