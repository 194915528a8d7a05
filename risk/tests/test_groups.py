"""Sector and asset-class concentration limits (risk.engine.groups, limits_config)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.cycle import PortfolioState, StrategyState
from portfolio.engine.errors import ConfigError
from portfolio.engine.state import DayContext
from risk.engine.limits_config import limit_check, parse_risk_config
from risk.engine.manager import LimitRule, RiskState, risk_step

NO_RETURNS = np.zeros((0, 0))
D0 = date(2024, 3, 1)
FREE = Execution()
SECTORS = {"X": "Tech", "Y": "Tech", "Z": "Energy"}
CLASSES = {"X": "equity", "Y": "equity", "Z": "commodity"}
GROUPS = {"sector": SECTORS, "asset_class": CLASSES}
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "risk_limits.yaml"


def _state(a: Book, b: Book, whole_a: bool = False) -> PortfolioState:
    return PortfolioState(
        2000.0,
        1.0,
        [
            StrategyState("A", 0.5, True, "daily", Execution(whole_shares=whole_a), a, pending={}),
            StrategyState("B", 0.5, True, "daily", FREE, b, pending={}),
        ],
    )


def _ctx(marks: dict[str, float], day: date = D0) -> DayContext:
    return DayContext(day, dict(marks), dict(marks), {"A": 0.0, "B": 0.0})


def _rule(**kw) -> LimitRule:
    base = dict(
        id=1,
        name="sector_limits",
        scope="sector",
        metric="group_net_weight",
        direction="max",
        threshold=0.24,
        severity="high",
        action="reduce_positions",
    )
    return LimitRule(**(base | kw))


def _step(state, ctx, risk, limits):
    return risk_step(state, ctx, risk, limits, {}, NO_RETURNS, groups=GROUPS)


def _fills(ctx) -> list[tuple]:
    return [(n, f.ticker, pytest.approx(f.quantity), f.reason) for n, f in ctx.fills]


PRICES = {"X": 100.0, "Y": 100.0, "Z": 100.0}


def test_a_sector_net_breach_cuts_every_book_in_the_sector_by_threshold_over_value_once():
    # A: 4 X (Tech) at 100, cash 600 -> equity 1000; B: 2 Y (Tech), cash 800 -> 1000.
    # Tech net = (400 + 200) / 2000 = 0.30 > 0.24: k = 0.24 / 0.30 = 0.8, so A sells
    # 0.8 X and B 0.4 Y; Tech is then 480 / 2000 = 0.24. Energy (nothing held) is 0.
    state = _state(
        Book(600.0, {"X": Holding(4, 100.0, D0)}), Book(800.0, {"Y": Holding(2, 100.0, D0)})
    )
    risk, limit = RiskState(), _rule()
    ctx = _ctx(PRICES)
    m, events = _step(state, ctx, risk, [limit])
    assert [(e.kind, e.target, e.value, e.action) for e in events] == [
        ("opened", "Tech", pytest.approx(0.30), "reduce_positions")
    ]
    assert _fills(ctx) == [("A", "X", -0.8, "risk_action"), ("B", "Y", -0.4, "risk_action")]
    assert m.detail["groups"]["sector"]["net"] == {
        "Energy": 0.0,
        "Tech": pytest.approx(0.24),
    }
    # the same prices next bar: at the cap, not beyond it: it resolves and nothing trades
    ctx2 = _ctx(PRICES, D0 + timedelta(days=1))
    _, again = _step(state, ctx2, risk, [limit])
    assert [(e.kind, e.target) for e in again] == [("resolved", "Tech")] and ctx2.fills == []


def test_an_open_sector_violation_cuts_again_when_new_fills_push_the_sector_back_over():
    # After the cut of the test above (A 3.2 X, B 1.6 Y, Tech 0.24) A buys 0.8 X back:
    # Tech = (400 + 160) / 2000 = 0.28; the excess 0.04 * 2000 = 80 comes off the 560
    # held, c = 1/7: A sells 4/7 X, B 1.6/7 Y, back to 0.24, without a second violation.
    state = _state(
        Book(600.0, {"X": Holding(4, 100.0, D0)}), Book(800.0, {"Y": Holding(2, 100.0, D0)})
    )
    risk, limit = RiskState(), _rule()
    _step(state, _ctx(PRICES), risk, [limit])
    day2 = D0 + timedelta(days=1)
    state.strategies[0].book.trade("X", 0.8, 100.0, day2, FREE, "rebalance")
    ctx2 = _ctx(PRICES, day2)
    m, events = _step(state, ctx2, risk, [limit])
    assert [(e.kind, e.target, e.value) for e in events] == [
        ("enforced", "Tech", pytest.approx(0.28))
    ]
    assert _fills(ctx2) == [("A", "X", -4 / 7, "risk_action"), ("B", "Y", -1.6 / 7, "risk_action")]
    assert m.detail["groups"]["sector"]["net"]["Tech"] == pytest.approx(0.24)


def test_on_the_net_basis_a_short_in_the_sector_offsets_and_only_the_long_side_is_cut():
    # A long 6 X (cash 400: equity 1000), B short 2 Y (cash 1200: equity 1000), both Tech.
    # Net Tech = |600 - 200| / 2000 = 0.20 > 0.15: excess 0.05 * 2000 = 100 off the long
    # side's 600: A sells 1 X. Net Tech (500 - 200) / 2000 = 0.15; the short is untouched.
    state = _state(
        Book(400.0, {"X": Holding(6, 100.0, D0)}), Book(1200.0, {"Y": Holding(-2, 100.0, D0)})
    )
    ctx = _ctx(PRICES)
    m, events = _step(state, ctx, RiskState(), [_rule(threshold=0.15)])
    assert [(e.kind, e.target, e.value) for e in events] == [("opened", "Tech", 0.2)]
    assert _fills(ctx) == [("A", "X", -1.0, "risk_action")]
    assert m.detail["groups"]["sector"]["net"]["Tech"] == pytest.approx(0.15)


def test_on_the_gross_basis_an_asset_class_cut_shrinks_longs_and_shorts_alike():
    # The same books: equity gross = (600 + 200) / 2000 = 0.40 > 0.30; excess 200 off 800,
    # c = 0.25: A sells 1.5 X, B buys back 0.5 Y; gross (450 + 150) / 2000 = 0.30.
    state = _state(
        Book(400.0, {"X": Holding(6, 100.0, D0)}), Book(1200.0, {"Y": Holding(-2, 100.0, D0)})
    )
    limit = _rule(
        name="asset_class_limits", scope="asset_class", metric="group_gross_weight", threshold=0.3
    )
    ctx = _ctx(PRICES)
    m, events = _step(state, ctx, RiskState(), [limit])
    assert [(e.kind, e.target, e.value) for e in events] == [("opened", "equity", 0.4)]
    assert _fills(ctx) == [("A", "X", -1.5, "risk_action"), ("B", "Y", 0.5, "risk_action")]
    assert m.detail["groups"]["asset_class"]["gross"] == {
        "commodity": 0.0,
        "equity": pytest.approx(0.3),
    }


def test_the_default_cap_skips_a_group_with_its_own_limit_and_each_group_opens_its_own():
    # A: 9 X (Tech), B: 9 Z (Energy), cash 100 each: each sector 900 / 2000 = 0.45.
    # Default 0.40 (alert only) and Tech's own 0.50: only Energy breaches (the default);
    # Tech at 0.45 is within its own cap. Lowering Tech's cap to 0.44 opens Tech on its own.
    state = _state(
        Book(100.0, {"X": Holding(9, 100.0, D0)}), Book(100.0, {"Z": Holding(9, 100.0, D0)})
    )
    alert = dict(severity="low", action="alert_only")
    default = _rule(threshold=0.40, **alert)
    tech = _rule(id=2, name="sector_limits[Tech]", group="Tech", threshold=0.50, **alert)
    ctx = _ctx(PRICES)
    _, events = _step(state, ctx, RiskState(), [default, tech])
    assert [(e.kind, e.limit_id, e.target) for e in events] == [("opened", 1, "Energy")]
    assert ctx.fills == []
    tight = _rule(id=2, name="sector_limits[Tech]", group="Tech", threshold=0.44, **alert)
    _, events = _step(state, _ctx(PRICES), RiskState(), [default, tight])
    assert [(e.kind, e.limit_id, e.target) for e in events] == [
        ("opened", 1, "Energy"),
        ("opened", 2, "Tech"),
    ]


def test_a_whole_shares_book_cuts_a_whole_number_of_units_rounded_up():
    # A: 3 X (cash 700: equity 1000), whole shares; B cash only. Tech 300 / 2000 = 0.15 >
    # 0.12: the cut is 60 of 300, 0.6 units, rounded up to 1: A holds 2, Tech 0.10.
    state = _state(Book(700.0, {"X": Holding(3, 100.0, D0)}), Book(1000.0, {}), whole_a=True)
    ctx = _ctx(PRICES)
    m, _ = _step(state, ctx, RiskState(), [_rule(threshold=0.12)])
    assert _fills(ctx) == [("A", "X", -1.0, "risk_action")]
    assert m.detail["groups"]["sector"]["net"]["Tech"] == pytest.approx(0.10)


def test_a_sold_out_sector_is_measured_at_zero_so_its_violation_resolves():
    state = _state(Book(700.0, {"X": Holding(3, 100.0, D0)}), Book(1000.0, {}))
    risk, limit = RiskState(), _rule(threshold=0.12, severity="low", action="alert_only")
    assert [e.kind for e in _step(state, _ctx(PRICES), risk, [limit])[1]] == ["opened"]
    day2 = D0 + timedelta(days=1)
    state.strategies[0].book.trade("X", -3, 100.0, day2, FREE, "rebalance")
    _, events = _step(state, _ctx(PRICES, day2), risk, [limit])
    assert [(e.kind, e.target, e.value) for e in events] == [("resolved", "Tech", 0.0)]


# --- configuration ---------------------------------------------------------------


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_the_spec_example_yaml_still_loads_unchanged_with_no_group_limit():
    spec = parse_risk_config(_example(), source="risk_limits.yaml")
    assert not [s for s in spec.limits if s.scope in ("sector", "asset_class")]


def test_sector_and_asset_class_sections_become_one_limit_per_cap_with_their_severity():
    data = _example()
    data["portfolio_limits"]["sector_limits"] = {
        "basis": "net",
        "default": 0.40,
        "overrides": {"Information Technology": 0.30},
    }
    data["portfolio_limits"]["asset_class_limits"] = {
        "basis": "gross",
        "default": 0.8,
        "severity": "low",
    }
    spec = parse_risk_config(data, source="f.yaml")
    got = [
        (s.name, s.scope, s.metric, s.group, s.threshold, s.severity, s.action)
        for s in spec.limits
        if s.scope in ("sector", "asset_class")
    ]
    assert got == [
        ("sector_limits", "sector", "group_net_weight", None, 0.4, "high", "reduce_positions"),
        (
            "sector_limits[Information Technology]",
            "sector",
            "group_net_weight",
            "Information Technology",
            0.3,
            "high",
            "reduce_positions",
        ),
        (
            "asset_class_limits",
            "asset_class",
            "group_gross_weight",
            None,
            0.8,
            "low",
            "alert_only",
        ),
    ]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"default": 0.3, "cap": 1}, "sector_limits.cap: unknown key"),
        ({"default": 0.0}, "sector_limits.default: must be in (0, 1], got 0"),
        ({"default": 1.5}, "sector_limits.default: must be in (0, 1], got 1.5"),
        ({"basis": "long", "default": 0.3}, "sector_limits.basis: must be one of net, gross"),
        ({"overrides": [0.3]}, "sector_limits.overrides: must be a mapping of group name"),
        ({"overrides": {"Energy": "big"}}, "sector_limits.overrides.Energy: must be a number"),
        ({"overrides": {"Energy": 2}}, "sector_limits.overrides.Energy: must be in (0, 1]"),
        ({"severity": "severe", "default": 0.3}, "sector_limits.severity: must be one of"),
        ({"basis": "net"}, "sector_limits: needs a default cap or overrides"),
        ("0.3", "sector_limits: must be a mapping"),
    ],
)
def test_a_malformed_sector_section_is_refused_with_one_message_naming_file_key_and_rule(
    section, message
):
    data = _example()
    data["portfolio_limits"]["sector_limits"] = section
    with pytest.raises(ConfigError) as err:
        parse_risk_config(data, source="f.yaml")
    assert str(err.value).startswith(f"f.yaml: portfolio_limits.{message}")


def test_a_sector_cap_under_a_severity_whose_action_is_milder_takes_that_action():
    data = _example()
    data["portfolio_limits"]["violation_actions"]["high"] = "alert_only"
    data["portfolio_limits"]["sector_limits"] = {"default": 0.3}
    spec = parse_risk_config(data, source="f.yaml")
    (limit,) = [s for s in spec.limits if s.scope == "sector"]
    assert (limit.severity, limit.action) == ("high", "alert_only")


def test_a_hand_edited_sector_limit_follows_the_same_rules_as_the_yaml():
    ok = dict(direction="max", threshold=0.3, severity="high", action="reduce_positions")
    assert limit_check(scope="sector", metric="group_net_weight", **ok) == {}
    assert limit_check(scope="asset_class", metric="group_gross_weight", **ok) == {}
    assert "threshold" in limit_check(
        scope="sector", metric="group_net_weight", **(ok | {"threshold": 1.5})
    )
    assert "metric" in limit_check(scope="sector", metric="ticker_weight", **ok)
