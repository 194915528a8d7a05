"""The risk manager through the update path: a price path built here breaches each kind of
limit and produces exactly one violation per target with the configured action, the
trades it implies and one alert per channel; re-running creates nothing new. Plus the
metrics stored on the bundled data against a direct numpy computation, and bad input."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
import yaml
from numpy.testing import assert_allclose

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.engine.errors import ConfigError
from portfolio.models import PortfolioSnapshot, RebalanceEvent, StrategySnapshot, Trade
from risk.engine.limits_config import parse_risk_config
from risk.models import AlertDelivery, RiskLimit, Violation

pytestmark = pytest.mark.django_db
CHANNELS = """
alert_settings:
  email: {enabled: true, recipients: ["desk@example.com"]}
  webhook: {enabled: true, url: "http://127.0.0.1:9/hook"}
"""


@pytest.fixture(autouse=True)
def alert_every_bar(settings):
    settings.QUANTSITE_ALERT_MAX_AGE_DAYS = 100_000  # the paths are short, dates arbitrary


def _closes(**series) -> pd.DataFrame:
    n = len(next(iter(series.values())))
    return pd.DataFrame(series, index=pd.bdate_range("2031-01-01", periods=n), dtype=float)


FLAT_THEN_DROP = [100.0] * 20 + [85.0] * 4  # -15% in one bar, then flat
SWINGS = list(100 * np.cumprod([1.0] + [1.06, 0.95] * 10))  # ~80% annual vol


def _portfolio(limits_yaml: str, *, leverage=1.0, top_n=1, name="risk test"):
    child = {
        "signal_type": "MomentumSignalV2",
        "parameters": {"lookback": 1, "sma_filter": None, "top_n": top_n, "frequency": "daily"},
    }
    alloc = {
        "portfolio": {
            "name": name,
            "initial_capital": 100000,
            "leverage_target": leverage,
            "rebalancing": {"method": "manual"},
        },
        "strategies": [
            {"name": "s1", "allocation": leverage / 2, **child},
            {"name": "s2", "allocation": leverage / 2, **child},
        ],
    }
    spec = parse_allocation_config(alloc, source="alloc.yaml")
    risk = parse_risk_config(yaml.safe_load(limits_yaml + CHANNELS), source="risk.yaml")
    return portfolio_configure(spec=spec, risk=risk, source="test")


SCENARIOS = {
    # name: (limits YAML, closes, leverage, top_n, limit name, targets, action, trades?)
    "portfolio drawdown liquidates": (
        "portfolio_limits: {max_drawdown: -0.10}\n",
        {"AAPL": FLAT_THEN_DROP},
        1.0,
        1,
        "max_drawdown",
        [""],
        "liquidate_all",
        True,
    ),
    "portfolio leverage reduces": (
        "portfolio_limits: {max_leverage: 1.2}\n",
        {"AAPL": [100.0, 101, 102, 103, 104, 105]},
        1.5,
        1,
        "max_leverage",
        [""],
        "reduce_positions",
        True,
    ),
    "portfolio volatility reduces": (
        "portfolio_limits: {max_volatility: 0.25}\n",
        {"AAPL": SWINGS},
        1.0,
        1,
        "max_volatility",
        [""],
        "reduce_positions",
        True,
    ),
    "portfolio VaR reduces": (
        "portfolio_limits: {max_var_95: 0.02}\n",
        {"AAPL": SWINGS},
        1.0,
        1,
        "max_var_95",
        [""],
        "reduce_positions",
        True,
    ),
    "strategy drawdown pauses each": (
        "strategy_limits: {max_drawdown: -0.10}\n",
        {"AAPL": FLAT_THEN_DROP},
        1.0,
        1,
        "strategy_max_drawdown",
        ["s1", "s2"],
        "pause_strategy",
        False,
    ),
    "strategy leverage reduces each": (
        "strategy_limits: {max_leverage: 1.2}\n",
        {"AAPL": [100.0, 101, 102, 103, 104, 105]},
        1.5,
        1,
        "strategy_max_leverage",
        ["s1", "s2"],
        "reduce_positions",
        True,
    ),
    "strategy position count alerts": (
        "strategy_limits: {max_positions: 1}\n",
        {"AAPL": [100.0, 101, 102, 103], "MSFT": [50.0, 51, 52, 53]},
        1.0,
        2,
        "strategy_max_positions",
        ["s1", "s2"],
        "alert_only",
        False,
    ),
    "ticker weight alerts on the net position": (
        "portfolio_limits: {position_limits: {max_weight_per_ticker: 0.10}}\n",
        {"AAPL": [100.0, 101, 102, 103]},
        1.0,
        1,
        "max_weight_per_ticker",
        ["AAPL"],
        "alert_only",
        False,
    ),
    "top-5 concentration alerts": (
        "portfolio_limits: {position_limits: {max_concentration_top5: 0.40}}\n",
        {"AAPL": [100.0, 101, 102, 103]},
        1.0,
        1,
        "max_concentration_top5",
        [""],
        "alert_only",
        False,
    ),
    "strategy correlation pauses one": (
        "portfolio_limits: {correlation_limits: {max_strategy_correlation: 0.80}}\n",
        {"AAPL": SWINGS},
        1.0,
        1,
        "max_strategy_correlation",
        [""],
        "pause_strategy",
        False,
    ),
    "diversification ratio alerts": (
        "portfolio_limits: {min_diversification_ratio: 1.2}\n",
        {"AAPL": SWINGS},
        1.0,
        1,
        "min_diversification_ratio",
        [""],
        "alert_only",
        False,
    ),
}


@pytest.mark.parametrize("case", list(SCENARIOS), ids=list(SCENARIOS))
def test_a_breach_opens_one_violation_acts_and_alerts_once_per_channel(case):
    limits, prices, leverage, top_n, name, targets, action, trades = SCENARIOS[case]
    portfolio = _portfolio(limits, leverage=leverage, top_n=top_n)
    closes = _closes(**prices)
    portfolio_apply(portfolio=portfolio, closes=closes)
    violations = list(Violation.objects.filter(portfolio=portfolio).order_by("id"))
    assert [v.limit.name for v in violations] == [name] * len(targets), [
        (v.limit.name, v.date, v.value, v.message) for v in violations
    ]
    assert {v.action_taken for v in violations} == {action}
    got = sorted(
        (v.strategy.name if v.strategy else v.instrument.ticker if v.instrument else "")
        for v in violations
    )
    assert got == sorted(targets)
    if action == "pause_strategy":  # the pause took effect, not just its record
        paused = set(portfolio.strategies.filter(status="paused").values_list("name", flat=True))
        assert paused and (paused == set(targets) or targets == [""])
    for v in violations:
        on_day = Trade.objects.filter(strategy__portfolio=portfolio, date=v.date)
        has_risk_trades = on_day.filter(reason="risk_action").exists()
        assert has_risk_trades == trades, (v.date, list(on_day.values_list("reason", flat=True)))
        assert AlertDelivery.objects.filter(violation=v).count() == 2  # email + webhook
    # Applying the same bars again changes nothing; neither does a later run with no bar.
    counts = (Violation.objects.count(), AlertDelivery.objects.count(), Trade.objects.count())
    assert portfolio_apply(portfolio=portfolio, closes=closes).dates_applied == 0
    assert (Violation.objects.count(), AlertDelivery.objects.count(), Trade.objects.count()) == (
        counts
    )


def test_critical_breach_flattens_every_book_blocks_and_re_enters_in_steps():
    limits = (
        "portfolio_limits: {max_drawdown: -0.10}\nrecovery: {steps: [0.5, 1.0], cooldown_bars: 2}\n"
    )
    portfolio = _portfolio(limits)
    prices = FLAT_THEN_DROP + [85.0] * 6
    portfolio_apply(portfolio=portfolio, closes=_closes(AAPL=prices))
    (v,) = Violation.objects.filter(portfolio=portfolio)
    days = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", "gross_exposure", "equity")
    )
    i = [d for d, _, _ in days].index(v.date)
    assert float(days[i][1]) == 0.0  # flat at the close of the breach
    assert float(days[i + 1][1]) == 0.0  # blocked while the violation is open
    v.refresh_from_db()
    assert v.status == "resolved" and v.resolved_on == days[i + 2][0]  # after 2 bars
    # re-entry: half the targets at the resolution bar, all of them the bar after
    exposure = [float(g) / float(e) for _, g, e in days[i + 2 : i + 4]]
    assert_allclose(exposure, [0.5, 1.0], rtol=1e-9)
    reasons = set(
        Trade.objects.filter(strategy__portfolio=portfolio, date=days[i + 2][0]).values_list(
            "reason", flat=True
        )
    )
    assert reasons == {"risk_action"}
    (event,) = RebalanceEvent.objects.filter(portfolio=portfolio, trigger="risk_breach")
    assert event.date == days[i + 2][0]  # the books restart from their target shares


def test_stored_risk_metrics_equal_a_direct_numpy_computation_on_real_data():
    from portfolio.feeds import BundledProvider

    limits = "portfolio_limits: {max_leverage: 5.0}\n"  # a limit that never binds
    spec = parse_allocation_config(
        {
            "portfolio": {"name": "real", "initial_capital": 100000},
            "strategies": [
                {
                    "name": f"momentum_{lb}",
                    "allocation": w,
                    "signal_type": "MomentumSignalV2",
                    "parameters": {"lookback": lb, "sma_filter": None, "top_n": 5},
                }
                for lb, w in ((60, 0.3), (120, 0.4), (200, 0.3))
            ],
        },
        source="alloc.yaml",
    )
    risk = parse_risk_config(yaml.safe_load(limits), source="risk.yaml")
    portfolio = portfolio_configure(spec=spec, risk=risk, source="test")
    closes = BundledProvider().closes_frame()
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1992, 6, 30))
    snaps = list(PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"))
    rows = StrategySnapshot.objects.filter(strategy__portfolio=portfolio).values_list(
        "date", "strategy__name", "unit_return", "weight"
    )
    frame = pd.DataFrame(list(rows), columns=["date", "name", "u", "w"])
    u = frame.pivot(index="date", columns="name", values="u")
    w = frame.pivot(index="date", columns="name", values="w")
    dates = list(u.index)
    for k in (300, 450, len(dates) - 1):
        day = dates[k]
        # the window: the 60 bars before the close (funding day excluded), weights of the
        # close times the exposure held (1: static, unlevered, no risk action)
        window = u.iloc[max(1, k - 60) : k].to_numpy()
        weights = w.iloc[k].to_numpy()
        p = window @ weights
        cov = np.cov(window, rowvar=False, ddof=1)
        snap = snaps[k]
        assert snap.date == day
        assert_allclose(snap.volatility, math.sqrt(252 * weights @ cov @ weights), rtol=1e-9)
        q95 = np.quantile(p, 0.05)
        assert_allclose(snap.var_95, -q95, rtol=1e-9)
        assert_allclose(snap.cvar_95, -p[p <= q95].mean(), rtol=1e-9)
        assert_allclose(snap.var_99, -np.quantile(p, 0.01), rtol=1e-9)
        sd = np.sqrt(np.diag(cov))
        dr = (weights @ sd) / math.sqrt(weights @ cov @ weights)
        assert_allclose(snap.diversification_ratio, dr, rtol=1e-9)
        corr = np.corrcoef(window, rowvar=False)
        assert_allclose(snap.max_correlation, corr[~np.eye(3, dtype=bool)].max(), rtol=1e-9)
        assert_allclose(snap.leverage, float(snap.gross_exposure) / float(snap.equity))


@pytest.mark.parametrize(
    ("text", "where", "rule"),
    [
        ("portfolio_limits: {max_drawdown: 0.15}\n", "portfolio_limits.max_drawdown", "negative"),
        (
            "portfolio_limits: {max_sharpe: 2.0}\n",
            "portfolio_limits.max_sharpe",
            "unknown key",
        ),
        (
            "portfolio_limits:\n  max_drawdown: -0.15\n  violation_actions: {low: liquidate_all}\n",
            "violation_actions.low",
            "cannot take action liquidate_all",
        ),
        (
            "portfolio_limits: {max_drawdown: -0.15}\nrecovery: {limits: {max_drawdown: "
            "{threshold: -0.30}}}\n",
            "recovery.limits.max_drawdown.threshold",
            "safe side",
        ),
        ("recovery: {steps: [0.5, 0.25]}\n", "recovery.steps", "ascending"),
    ],
)
def test_a_bad_limits_file_names_the_field_and_saves_nothing(text, where, rule):
    with pytest.raises(ConfigError) as err:
        parse_risk_config(yaml.safe_load(text), source="risk.yaml")
    assert where in str(err.value) and rule in str(err.value)
    assert not RiskLimit.objects.exists()


def test_the_admin_refuses_an_unknown_metric_a_harsh_action_and_a_wrong_sign(
    admin_client, django_user_model
):
    portfolio = _portfolio("portfolio_limits: {max_leverage: 2.0}\n")
    before = list(RiskLimit.objects.values())
    url = "/admin/risk/risklimit/add/"
    base = {
        "portfolio": portfolio.pk,
        "name": "new",
        "scope": "portfolio",
        "metric": "leverage",
        "direction": "max",
        "threshold": "1.5",
        "severity": "high",
        "action": "reduce_positions",
        "recovery_steps": "[]",
        "cooldown_bars": "0",
        "enabled": "on",
    }
    for change, field, text in [
        ({"metric": "sharpe"}, "metric", "unknown metric"),
        ({"severity": "low", "action": "liquidate_all"}, "action", "cannot take action"),
        ({"metric": "drawdown", "direction": "min", "threshold": "0.2"}, "threshold", "must be"),
    ]:
        response = admin_client.post(url, base | change)
        assert response.status_code == 200, change  # the form again, with the error
        assert text in response.content.decode(), (change, field)
    assert list(RiskLimit.objects.values()) == before
    assert admin_client.post(url, base).status_code == 302  # the good one saves


def test_an_operator_resume_is_recorded_and_the_breach_does_not_pause_it_again(admin_client):
    from portfolio.models import ConfigChange, Strategy

    portfolio = _portfolio("strategy_limits: {max_drawdown: -0.10}\n")
    closes = _closes(AAPL=FLAT_THEN_DROP)
    portfolio_apply(portfolio=portfolio, closes=closes)
    s1 = Strategy.objects.get(portfolio=portfolio, name="s1")
    assert s1.status == "paused"
    response = admin_client.post(
        "/admin/portfolio/strategy/",
        {"action": "resume_strategies", "_selected_action": [s1.pk]},
    )
    assert response.status_code == 302
    s1.refresh_from_db()
    assert s1.status == "active"
    change = ConfigChange.objects.filter(object_repr="s1", field="status").latest("id")
    assert (change.actor, change.before, change.after) == ("admin", "paused", "active")
    # it takes effect at the first bar after the one applied when it was made
    assert change.bar_date is None and change.applies_after == closes.index[-1].date()
    v = Violation.objects.get(strategy=s1)
    assert v.status == "open" and "resumed by operator admin" in v.message
    more = _closes(AAPL=FLAT_THEN_DROP + [84.0, 83.0])
    portfolio_apply(portfolio=portfolio, closes=more)
    s1.refresh_from_db()
    assert s1.status == "active" and Violation.objects.filter(strategy=s1).count() == 1
    later = StrategySnapshot.objects.filter(strategy=s1, date__gt=closes.index[-1].date())
    assert [snap.status for snap in later] == ["active", "active"]
