"""Sector and asset-class limits through the update path: a price path built here breaches
each once (one violation per group, the configured action and its trades, nothing new on a
re-run), and an Information Technology cap on the bundled data fires exactly where the
netted sector exposure, recomputed here from the stored trades and the closes, exceeds it."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import yaml

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import Instrument, PortfolioSnapshot, Trade
from risk.engine.limits_config import parse_risk_config
from risk.models import RiskLimit, Violation

pytestmark = pytest.mark.django_db
IT = "Information Technology"


def _portfolio(limits_yaml: str, strategies: list[dict], name: str = "sector test"):
    alloc = {
        "portfolio": {"name": name, "initial_capital": 100000, "rebalancing": {"method": "manual"}},
        "strategies": strategies,
    }
    spec = parse_allocation_config(alloc, source="alloc.yaml")
    risk = parse_risk_config(yaml.safe_load(limits_yaml), source="risk.yaml")
    return portfolio_configure(spec=spec, risk=risk, source="test")


def _momentum(name: str, allocation: float, top_n: int, lookback: int = 1) -> dict:
    return {
        "name": name,
        "allocation": allocation,
        "signal_type": "MomentumSignalV2",
        "parameters": {
            "lookback": lookback,
            "sma_filter": None,
            "top_n": top_n,
            "frequency": "daily",
        },
    }


def _closes(**series) -> pd.DataFrame:
    n = len(next(iter(series.values())))
    return pd.DataFrame(series, index=pd.bdate_range("2031-01-01", periods=n), dtype=float)


# AAPL and MSFT are Information Technology, XOM Energy, all equity (instruments.csv).
RISING = {
    "AAPL": [100.0, 101, 102, 103, 104, 105],
    "MSFT": [50.0, 51, 52, 53, 54, 55],
    "XOM": [80.0, 80.5, 81, 81.5, 82, 82.5],
}


@pytest.mark.parametrize(
    ("limits", "limit_name", "group", "action", "trades"),
    [
        (
            f"portfolio_limits: {{sector_limits: {{overrides: {{'{IT}': 0.30}}}}}}\n",
            f"sector_limits[{IT}]",
            IT,
            "reduce_positions",
            True,
        ),
        (
            "portfolio_limits: {asset_class_limits: {basis: gross, default: 0.5, severity: low}}\n",
            "asset_class_limits",
            "equity",
            "alert_only",
            False,
        ),
    ],
    ids=["sector reduces", "asset class alerts"],
)
def test_a_group_breach_opens_one_violation_per_group_acts_and_a_rerun_adds_nothing(
    limits, limit_name, group, action, trades
):
    # Two momentum books each fully invested in the three tickers (top 3 of 3, a third
    # each): IT (AAPL + MSFT) is about 2/3 of equity, equity assets all of it.
    assert dict(Instrument.objects.filter(ticker__in=RISING).values_list("ticker", "sector")) == {
        "AAPL": IT,
        "MSFT": IT,
        "XOM": "Energy",
    }
    portfolio = _portfolio(limits, [_momentum("s1", 0.5, 3), _momentum("s2", 0.5, 3)])
    closes = _closes(**RISING)
    portfolio_apply(portfolio=portfolio, closes=closes)
    violations = list(Violation.objects.filter(portfolio=portfolio))
    assert [(v.limit.name, v.group, v.action_taken) for v in violations] == [
        (limit_name, group, action)
    ], [(v.limit.name, v.date, v.value, v.message) for v in violations]
    (v,) = violations
    assert v.value > v.threshold
    risk_trades = Trade.objects.filter(strategy__portfolio=portfolio, reason="risk_action")
    assert risk_trades.filter(date=v.date).exists() == trades
    if trades:
        # only the breaching sector is cut, in both books, and it stays at its cap while
        # the violation is open (each daily rebalance back up is cut again)
        assert set(risk_trades.values_list("instrument__ticker", flat=True)) == {"AAPL", "MSFT"}
        assert set(risk_trades.values_list("strategy__name", flat=True)) == {"s1", "s2"}
        assert v.status == "open"
        for snap in PortfolioSnapshot.objects.filter(portfolio=portfolio, date__gte=v.date):
            assert _sector_net(portfolio, snap.date, closes, IT) == pytest.approx(0.30, abs=1e-9)
    counts = (Violation.objects.count(), Trade.objects.count())
    assert portfolio_apply(portfolio=portfolio, closes=closes).dates_applied == 0
    assert (Violation.objects.count(), Trade.objects.count()) == counts


def _holdings(portfolio, through: date) -> dict[str, float]:
    """Net quantity per ticker across the books after the fills of ``through``."""
    out: dict[str, float] = {}
    rows = Trade.objects.filter(strategy__portfolio=portfolio, date__lte=through).values_list(
        "instrument__ticker", "side", "quantity"
    )
    for ticker, side, q in rows:  # quantity is positive, side the direction
        out[ticker] = out.get(ticker, 0.0) + (q if side == Trade.Side.BUY else -q)
    return out


def _sector_net(portfolio, day: date, closes: pd.DataFrame, sector: str) -> float:
    """|sum of netted value of the sector's tickers| / equity at the close of ``day``."""
    sectors = dict(Instrument.objects.values_list("ticker", "sector"))
    row = closes.loc[pd.Timestamp(day)]
    value = sum(
        q * row[t] for t, q in _holdings(portfolio, day).items() if sectors.get(t) == sector
    )
    equity = float(PortfolioSnapshot.objects.get(portfolio=portfolio, date=day).equity)
    return abs(value) / equity


def test_an_it_cap_on_the_bundled_data_fires_where_the_netted_it_exposure_exceeds_it():
    from portfolio.feeds import BundledProvider

    limits = (
        f"portfolio_limits: {{sector_limits: {{overrides: {{'{IT}': 0.30}}, severity: low}}}}\n"
    )
    portfolio = _portfolio(
        limits,
        [_momentum("momentum_60", 0.5, 5, 60), _momentum("momentum_120", 0.5, 5, 120)],
        name="bundled IT",
    )
    closes = BundledProvider().closes_frame()
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=date(1991, 12, 31))
    days = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", flat=True)
    )
    # Independently: the IT exposure of every close from the stored trades and the closes;
    # an alert-only violation opens on a close above 0.30 after one at or below it (or the
    # first), and resolves on the next close at or below it.
    above = [_sector_net(portfolio, d, closes, IT) > 0.30 for d in days]
    opens = [d for i, d in enumerate(days) if above[i] and (i == 0 or not above[i - 1])]
    resolves = [d for i, d in enumerate(days) if i > 0 and above[i - 1] and not above[i]]
    got = list(
        Violation.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", "resolved_on", "group")
    )
    assert opens, "the path never breaches: pick another cap"
    assert [d for d, _, _ in got] == opens
    assert [r for _, r, _ in got if r is not None] == resolves
    assert {g for _, _, g in got} == {IT}
    assert RiskLimit.objects.get(portfolio=portfolio, group=IT).scope == "sector"


def test_a_reducing_sector_cap_leaves_the_same_rows_in_one_commit_in_chunks_and_bar_by_bar():
    from operations.digest import portfolio_tables, tables_diff
    from portfolio.feeds import BundledProvider
    from portfolio.models import ConfigChange

    limits = (
        f"portfolio_limits:\n  sector_limits: {{default: 0.5, overrides: {{'{IT}': 0.20}}}}\n"
        "  asset_class_limits: {basis: gross, default: 0.9, severity: low}\n"
    )
    closes = BundledProvider().closes_frame()
    end = date(1990, 6, 29)
    tables = {}
    for path, chunk in (("one commit", 10**6), ("chunks of 7", 7), ("bar by bar", 1)):
        portfolio = _portfolio(
            limits,
            [_momentum("m20", 0.5, 5, 20), _momentum("m40", 0.5, 5, 40)],
            name="sector replay",
        )
        portfolio_apply(portfolio=portfolio, closes=closes, as_of=end, chunk_dates=chunk)
        tables[path] = portfolio_tables(portfolio)
        portfolio.delete()
        ConfigChange.objects.all().delete()
    fired = tables["one commit"]["violation"]
    assert any(row[0] == f"sector_limits[{IT}]" for row in fired), fired[:3]
    assert any(row[7] == "reduce_positions" for row in fired)  # action_taken
    for path in ("chunks of 7", "bar by bar"):
        assert tables[path] == tables["one commit"], tables_diff(tables[path], tables["one commit"])
