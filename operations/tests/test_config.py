"""Loading strategy_allocation.yaml and risk_limits.yaml: the spec's examples, the demo, and
bad input that must name the file, the field and the rule and change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from operations.config import portfolio_configure
from portfolio.engine.errors import ConfigError
from portfolio.models import ConfigChange, Portfolio, Strategy
from portfolio.services.config import allocation_spec_read
from risk.models import AlertChannel, RiskLimit
from risk.services import risk_spec_read

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
SPEC_ALLOCATION = FIXTURES / "spec_strategy_allocation.yaml"
SPEC_RISK = FIXTURES / "spec_risk_limits.yaml"
DEMO = ROOT / "config" / "strategy_allocation.yaml"
DEMO_RISK = ROOT / "config" / "risk_limits.yaml"


def test_the_spec_allocation_example_loads_unchanged():
    spec = allocation_spec_read(SPEC_ALLOCATION)
    assert spec.name == "Multi-Strategy Momentum Portfolio"
    assert [(s.name, s.allocation, s.status) for s in spec.strategies] == [
        ("momentum_60", 0.30, "active"),
        ("momentum_120", 0.40, "active"),
        ("momentum_200", 0.30, "paused"),
    ]
    assert (spec.rebalance_trigger, spec.rebalance_frequency, spec.rebalance_threshold) == (
        "periodic",
        "monthly",
        0.05,
    )
    assert spec.strategies[0].risk.volatility_target == 0.24
    assert spec.strategies[0].signal.params.sma_filter == 200


def test_the_spec_risk_example_loads_unchanged_into_graded_limits():
    spec = risk_spec_read(SPEC_RISK)
    by_name = {limit.name: limit for limit in spec.limits}
    assert set(by_name) == {
        "max_leverage",
        "max_drawdown",
        "max_volatility",
        "min_diversification_ratio",
        "max_weight_per_ticker",
        "max_concentration_top5",
        "max_strategy_correlation",
        "correlation_alert",
    }
    dd = by_name["max_drawdown"]
    assert (dd.scope, dd.direction, dd.threshold, dd.severity, dd.action) == (
        "portfolio",
        "min",
        -0.15,
        "critical",
        "liquidate_all",
    )
    lev = by_name["max_leverage"]
    assert (lev.threshold, lev.severity, lev.action) == (2.0, "high", "reduce_positions")
    assert by_name["max_weight_per_ticker"].scope == "position"
    assert [(c.name, c.enabled) for c in spec.channels] == [
        ("email", True),
        ("slack", False),
        ("sms", False),
    ]


@pytest.mark.django_db
def test_the_demo_config_loads_into_the_database_with_an_audit_trail():
    call_command("load_config", allocation=str(DEMO), risk=str(DEMO_RISK))
    portfolio = Portfolio.objects.get()
    assert [s.name for s in portfolio.strategies.order_by("position_order")] == [
        "momentum_60",
        "momentum_120",
        "momentum_200",
        "mean_reversion_20",
        "trend_following_50",
    ]
    assert sum(float(s.target_allocation) for s in portfolio.strategies.all()) == pytest.approx(1)
    assert RiskLimit.objects.filter(portfolio=portfolio).count() == 10
    assert (
        AlertChannel.objects.filter(portfolio=portfolio).count() == 4
    )  # email, pagerduty, slack, sms (all disabled)
    assert ConfigChange.objects.filter(object_type="Strategy").exists()
    changes = ConfigChange.objects.count()
    call_command("load_config", allocation=str(DEMO), risk=str(DEMO_RISK))  # same again
    assert ConfigChange.objects.count() == changes  # nothing changed, nothing recorded


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alloc.yaml"
    path.write_text(text)
    return path


def _spec_with(old: str, new: str, tmp_path: Path) -> Path:
    return _write(tmp_path, SPEC_ALLOCATION.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    ("old", "new", "where", "rule"),
    [
        ("      lookback: 60", "      lookbak: 60", "strategies[0].parameters.lookbak", "unknown"),
        ("    allocation: 0.40", "    allocation: 0.30", "strategies[*].allocation", "sum to 0.9"),
        (
            'signal_type: "MomentumSignalV2"',
            'signal_type: "MomentumSignalV3"',
            "strategies[0].signal_type",
            "MomentumSignalV2",
        ),
        (
            "      lookback: 60",
            "      lookback: -60",
            "strategies[0].parameters.lookback",
            "positive",
        ),
        (
            "  initial_capital: 100000",
            "  initial_captial: 100000",
            "portfolio.initial_captial",
            "unknown key",
        ),
        (
            '    frequency: "monthly"',
            '    frequency: "fortnightly"',
            "portfolio.rebalancing.frequency",
            "one of",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_allocation_file_names_the_file_field_and_rule_and_changes_nothing(
    tmp_path, old, new, where, rule
):
    path = _spec_with(old, new, tmp_path)
    with pytest.raises(CommandError) as err:
        call_command("load_config", allocation=str(path), risk="")
    message = str(err.value)
    assert str(path) in message and where in message and rule in message
    assert not Portfolio.objects.exists() and not ConfigChange.objects.exists()


@pytest.mark.parametrize(
    ("old", "new", "where", "rule"),
    [
        (
            "  max_drawdown: -0.15",
            "  max_drawdown: 0.15",
            "portfolio_limits.max_drawdown",
            "negative",
        ),
        (
            "  max_leverage: 2.0 ",
            "  max_levrage: 2.0 ",
            "portfolio_limits.max_levrage",
            "unknown key",
        ),
        (
            'high:      "reduce_positions"',
            'high:      "sell_everything"',
            "violation_actions.high",
            "unknown action",
        ),
    ],
)
@pytest.mark.django_db
def test_a_bad_risk_file_is_refused_before_the_allocation_is_written(
    tmp_path, old, new, where, rule
):
    risk = tmp_path / "risk.yaml"
    risk.write_text(SPEC_RISK.read_text().replace(old, new, 1))
    with pytest.raises(CommandError) as err:
        call_command("load_config", allocation=str(SPEC_ALLOCATION), risk=str(risk))
    assert str(risk) in str(err.value) and where in str(err.value) and rule in str(err.value)
    assert not Portfolio.objects.exists() and not RiskLimit.objects.exists()


def test_invalid_yaml_syntax_names_the_line(tmp_path):
    path = _write(tmp_path, "portfolio:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"alloc.yaml line \d+: is not valid YAML"):
        allocation_spec_read(path)


def test_allocations_may_sum_to_the_leverage_target(tmp_path):
    text = (
        SPEC_ALLOCATION.read_text()
        .replace("  initial_capital: 100000", "  initial_capital: 100000\n  leverage_target: 1.5")
        .replace("allocation: 0.40", "allocation: 0.90")
    )
    spec = allocation_spec_read(_write(tmp_path, text))
    assert spec.leverage_target == 1.5


@pytest.mark.django_db
def test_a_strategy_with_history_cannot_be_dropped_by_a_new_file(tmp_path):
    portfolio = portfolio_configure(spec=allocation_spec_read(SPEC_ALLOCATION), source="x")
    strategy = portfolio.strategies.get(name="momentum_200")
    strategy.snapshots.create(
        date="2020-01-02",
        equity=1,
        cash=1,
        long_exposure=0,
        short_exposure=0,
        leverage=0,
        weight=0,
        daily_return=0,
        drawdown=0,
        positions_count=0,
        realized_pnl=0,
        unrealized_pnl=0,
    )
    text = SPEC_ALLOCATION.read_text()
    text = text[: text.index('  - name: "momentum_200"')].replace(
        "allocation: 0.40", "allocation: 0.70"
    )
    with pytest.raises(ConfigError, match="momentum_200.*has history"):
        portfolio_configure(spec=allocation_spec_read(_write(tmp_path, text)), source="y")
    assert Strategy.objects.filter(portfolio=portfolio).count() == 3


@pytest.mark.django_db
def test_the_admin_refuses_static_allocations_that_do_not_sum_to_the_target(admin_client):
    portfolio = portfolio_configure(spec=allocation_spec_read(SPEC_ALLOCATION), source="x")
    strategies = list(portfolio.strategies.order_by("position_order"))
    data = {
        "name": portfolio.name,
        "initial_capital": "100000",
        "leverage_target": "1",
        "allocation_method": "static",
        "allocation_params": "{}",
        "rebalance_trigger": "periodic",
        "rebalance_frequency": "monthly",
        "rebalance_trading_day": "1",
        "rebalance_threshold": "0.05",
        "rebalance_method": "cash",
        "commission_bps": "0",
        "slippage_bps": "0",
        "trade_band": "0",
        "strategies-TOTAL_FORMS": str(len(strategies)),
        "strategies-INITIAL_FORMS": str(len(strategies)),
        "strategies-MIN_NUM_FORMS": "0",
        "strategies-MAX_NUM_FORMS": "1000",
    }
    for i, s in enumerate(strategies):  # 0.3 + 0.4 + 0.3, then 0.4 for the last: 1.1
        data |= {
            f"strategies-{i}-id": str(s.pk),
            f"strategies-{i}-portfolio": str(portfolio.pk),
            f"strategies-{i}-target_allocation": "0.4" if i == 2 else str(s.target_allocation),
            f"strategies-{i}-status": s.status,
        }
    url = f"/admin/portfolio/portfolio/{portfolio.pk}/change/"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "allocations sum to 1.1; they must sum to 1.0" in response.content.decode()
    assert sorted(
        float(a) for a in portfolio.strategies.values_list("target_allocation", flat=True)
    ) == [0.3, 0.3, 0.4]
    data["strategies-2-target_allocation"] = "0.3"
    assert admin_client.post(url, data).status_code == 302  # 1.0 saves
