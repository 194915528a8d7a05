"""``reduce_position``: a low-severity ticker-weight breach cuts that ticker and caps it
while the violation is open (risk.engine.position_caps); the action ladder that allows it.
Numbers by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from portfolio.engine.book import Book, Execution
from portfolio.engine.caps import capped_weights
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates
from portfolio.engine.errors import ConfigError
from risk.engine.limits_config import limit_check, parse_risk_config
from risk.engine.manager import LimitRule, OpenBreach, RiskState, risk_step
from risk.engine.position_caps import caps_apply

FREE = Execution()
DAYS = [date(2024, 1, 1) + timedelta(days=i) for i in range(8)]


def _cap_rule(**kw) -> LimitRule:
    base = dict(
        id=7,
        name="max_weight_per_ticker",
        scope="position",
        metric="ticker_weight",
        direction="max",
        threshold=0.2,
        severity="low",
        action="reduce_position",
        ticker="X",  # B's Y (50%) is another ticker's matter
    )
    return LimitRule(**(base | kw))


def _run(limit: LimitRule, a_x: list[float], x: list[float]):
    """A (X at the weights ``a_x``, row t decided at close t) and B (all Y) on 2000."""
    state = PortfolioState(
        2000.0,
        1.0,
        [
            StrategyState("A", 0.5, True, "daily", FREE, Book()),
            StrategyState("B", 0.5, True, "daily", FREE, Book()),
        ],
    )
    closes = pd.DataFrame({"X": x, "Y": 100.0}, index=pd.to_datetime(DAYS))
    targets = {
        "A": pd.DataFrame({"X": a_x, "Y": 0.0}, index=closes.index),
        "B": pd.DataFrame({"X": 0.0, "Y": 1.0}, index=closes.index),
    }
    risk = RiskState()
    log, held = [], []  # per bar: the risk events; A's X and its cap after the risk step

    def hook(state, ctx):
        _, events = risk_step(state, ctx, risk, [limit], {}, pd.DataFrame().to_numpy())
        log.append([(e.kind, e.target, e.action, e.message) for e in events])
        a = state.strategies[0]
        x = a.book.holdings.get("X")
        held.append((x.quantity if x else 0.0, a.position_caps.get("X")))

    results = apply_dates(state, closes, targets, DAYS, risk_hook=hook)
    return state, risk, results, log, held


A_X = [0.3, 0.6, 0.6, 0.6, 0.3, 0.4, 0.4, 0.4]
X = [100, 100, 100, 100, 90, 90, 90, 90.0]


def _trades(result):
    return [(n, f.ticker, pytest.approx(f.quantity), f.reason) for n, f in result.fills]


def test_a_low_ticker_breach_cuts_once_caps_the_signal_and_lifts_when_it_resolves():
    state, risk, results, log, held = _run(_cap_rule(), A_X, X)
    a = state.strategies[0]
    # Day 1: A (1000) buys 0.3 -> 3 X; B buys 10 Y. X = 300 / 2000 = 15%: within 20%.
    assert _trades(results[1]) == [("A", "X", 3.0, "signal"), ("B", "Y", 10.0, "signal")]
    # Day 2: A buys to 0.6 -> 6 X = 30% > 20%: allowed 0.2 * 2000 / 100 = 4 X, A sells 2
    # at the same close; A keeps 4 X (cash 1000 - 600 + 200 = 600) and is capped at 4.
    assert _trades(results[2]) == [("A", "X", 3.0, "signal"), ("A", "X", -2.0, "risk_action")]
    assert log[2] == [("opened", "X", "reduce_position", "cut X by 33.33% in A")]
    assert held[2] == (4.0, 4.0)
    # Day 3: the signal still wants 0.6 -> 6 X (30%, a new breach without the cap): A
    # holds its 4 and trades nothing; the violation stays open, no new one.
    assert results[3].fills == [] and log[3] == []
    # Day 4, X 90: A 600 + 4 * 90 = 960, portfolio 1960. The signal wants 0.6 * 960 = 576
    # (6.4 X, 29.4%); the cap holds 4 X (18.4%): a cap in units, not a weight to buy back.
    assert results[4].fills == [] and log[4] == []
    assert held[3] == held[4] == (4.0, 4.0)
    # Day 5: the signal wants 0.3 -> 288 = 3.2 X: A sells 0.8. At full size X is
    # 288 / 1960 = 14.7% <= 20%: the violation resolves and the cap lifts.
    assert _trades(results[5]) == [("A", "X", -0.8, "signal")]
    assert log[5] == [("resolved", "X", "reduce_position", "cap on X lifted")]
    assert held[5] == (pytest.approx(3.2), None)
    # Day 6: 0.4 -> 384 = 4.267 X, more than the old cap (19.6%: within the limit).
    assert _trades(results[6]) == [("A", "X", 384 / 90 - 3.2, "signal")]
    assert log[6] == [] and log[7] == [] and results[7].fills == []
    assert risk.open == {} and a.position_caps == {}
    # one violation over the whole path
    assert sum(kind == "opened" for day in log for kind, *_ in day) == 1


def test_with_the_spec_alert_only_the_same_signal_holds_its_full_breaching_size():
    # The same path with the spec's low action (alert_only): nothing is cut, and A holds
    # the 6 X its signal asks for (30%) on days 2 and 3: the size the cap prevents.
    state, risk, results, log, held = _run(_cap_rule(action="alert_only"), A_X, X)
    assert log[2] == [("opened", "X", "alert_only", "alert only")]
    assert _trades(results[2]) == [("A", "X", 3.0, "signal")]
    assert held[2] == held[3] == (6.0, None)
    assert all(cap is None for _, cap in held)
    # the same one violation resolves on day 5 (the signal wants 14.7%)
    assert [k for day in log for k, *_ in day] == ["opened", "resolved"]


def test_a_price_rise_over_the_limit_cuts_again_and_lowers_the_cap():
    # Day 3 X rises to 125: A 600 + 4 * 125 = 1100, portfolio 2100; X 500 / 2100 = 23.8%
    # > 20%: allowed 0.2 * 2100 / 125 = 3.36 X, A sells 0.64 and is capped at 3.36.
    x = [100, 100, 100, 125, 125, 125, 125, 125.0]
    a_x = [0.3, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    state, risk, results, log, held = _run(_cap_rule(), a_x, x)
    assert _trades(results[3]) == [("A", "X", -0.64, "risk_action")]
    assert [k for k, *_ in log[3]] == ["enforced"]
    assert risk.open[(7, "X")].caps == {"A": pytest.approx(3.36)}
    assert held[3] == (pytest.approx(3.36), pytest.approx(3.36))
    assert all(r.fills == [] for r in results[4:])  # held at the cap, no new violation
    assert sum(kind == "opened" for day in log for kind, *_ in day) == 1


def test_capped_weights_clip_a_capped_ticker_to_its_units_on_either_side():
    s = StrategyState("A", 1.0, True, "daily", FREE, Book(1000.0), position_caps={"X": 2.0})
    # equity 1000, X at 100: 2 units = 0.2 of the book; Y uncapped
    assert capped_weights(s, {"X": 0.5, "Y": 0.5}, {"X": 100.0, "Y": 10.0}) == {
        "X": pytest.approx(0.2),
        "Y": 0.5,
    }
    assert capped_weights(s, {"X": -0.5}, {"X": 100.0}) == {"X": pytest.approx(-0.2)}
    assert capped_weights(s, {"X": 0.1}, {"X": 100.0}) == {"X": 0.1}  # under the cap


def test_reduce_position_on_a_portfolio_scope_limit_alerts_only():
    # top-5 concentration on day 1: X 15% + Y 50% = 65% > 10%: there is no one position
    rule = _cap_rule(scope="portfolio", metric="top5_concentration", threshold=0.1, ticker=None)
    _, _, results, log, held = _run(rule, A_X, X)
    assert log[1] == [("opened", "", "reduce_position", _fallback())]
    assert all(cap is None for _, cap in held)
    assert all(f.reason == "signal" for r in results for _, f in r.fills)


def _fallback() -> str:
    return "alert only (reduce_position cuts a position-scope breach only)"


def _config(actions: dict) -> dict:
    return {
        "portfolio_limits": {
            "position_limits": {"max_weight_per_ticker": 0.1, "max_concentration_top5": 0.4},
            "violation_actions": actions,
        }
    }


def test_low_severity_may_be_configured_to_reduce_that_position():
    spec = parse_risk_config(_config({"low": "reduce_position"}), source="risk.yaml")
    assert {limit.name: limit.action for limit in spec.limits} == {
        "max_weight_per_ticker": "reduce_position",
        "max_concentration_top5": "reduce_position",
    }
    medium = parse_risk_config(_config({"medium": "reduce_position"}), source="risk.yaml")
    assert {limit.action for limit in medium.limits} == {"alert_only"}  # low: the default


def test_low_severity_may_not_pause_a_strategy():
    with pytest.raises(ConfigError) as err:
        parse_risk_config(_config({"low": "pause_strategy"}), source="risk.yaml")
    assert str(err.value) == (
        "risk.yaml: portfolio_limits.violation_actions.low: a low-severity breach cannot take "
        "action pause_strategy; allowed: reduce_position, alert_only"
    )


def test_the_admin_edit_rules_rank_reduce_position_between_alert_and_pause():
    edit = dict(scope="position", metric="ticker_weight", direction="max", threshold=0.1)
    assert limit_check(**edit, severity="low", action="reduce_position") == {}
    assert limit_check(**edit, severity="medium", action="reduce_position") == {}
    assert limit_check(**edit, severity="low", action="reduce_positions") == {
        "action": "a low-severity breach cannot take action reduce_positions; allowed: "
        "reduce_position, alert_only"
    }
    assert (
        "reduce_position," in limit_check(**edit, severity="high", action="liquidate_all")["action"]
    )


def test_a_breach_keeps_its_caps_through_the_stored_state():
    from risk.services.session import risk_state_dump, risk_state_load

    risk = RiskState()
    cap = 4.0 / 3.0  # not a short decimal: must come back as the same double
    risk.open[(7, "X")] = OpenBreach(7, "X", DAYS[2], 0.3, "reduce_position", caps={"B": cap})
    risk.open[(1, "")] = OpenBreach(1, "", DAYS[2], 1.2, "reduce_positions")
    raw = risk_state_dump(risk)
    assert "caps" not in raw["open"][1]  # only a capping breach writes caps
    back = risk_state_load(raw)
    assert back.open[(7, "X")].caps == {"B": cap} and back.open[(1, "")].caps == {}


def test_a_cap_whose_limit_is_disabled_or_no_longer_caps_holds_nothing():
    books = [StrategyState(n, 0.5, True, "daily", FREE, Book()) for n in ("A", "B")]
    state = PortfolioState(2000.0, 1.0, books)
    breach = OpenBreach(7, "X", DAYS[2], 0.3, "reduce_position", caps={"B": 4.0, "A": 2.5})
    tighter = OpenBreach(8, "X", DAYS[3], 0.3, "reduce_position", caps={"A": 1.5})
    open_ = {(7, "X"): breach, (8, "X"): tighter}
    caps_apply(state, open_, [_cap_rule(), _cap_rule(id=8)])
    assert [s.position_caps for s in books] == [{"X": 1.5}, {"X": 4.0}]  # the smallest
    caps_apply(state, open_, [_cap_rule(action="alert_only")])  # 7 edited, 8 disabled
    assert [s.position_caps for s in books] == [{}, {}]
