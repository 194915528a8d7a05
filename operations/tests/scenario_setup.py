"""The portfolio the scenario tests stress: two monthly momentum books applied over the
bundled bars of 2022-06..2022-09 (so they hold positions), with a -10 % portfolio
drawdown limit, a 25 % ticker weight limit and a -90 % strategy drawdown limit."""

from __future__ import annotations

from datetime import date

import yaml

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import Portfolio, Position
from risk.engine.limits_config import parse_risk_config

LIMITS = (
    "portfolio_limits:\n  max_drawdown: -0.10\n"
    "  position_limits: {max_weight_per_ticker: 0.25}\n"
    "strategy_limits: {max_drawdown: -0.90}\n"
)


def momentum(lookback: int, top_n: int) -> dict:
    return {
        "signal_type": "MomentumSignalV2",
        "parameters": {"lookback": lookback, "sma_filter": None, "top_n": top_n},
    }


def stressed_portfolio(name: str = "stressed", start: date = date(2022, 6, 1)) -> Portfolio:
    alloc = {
        "portfolio": {
            "name": name,
            "initial_capital": 1_000_000,
            "rebalancing": {"method": "manual"},
        },
        "strategies": [
            {"name": "fast", "allocation": 0.5, **momentum(20, 3)},
            {"name": "slow", "allocation": 0.5, **momentum(60, 5)},
        ],
    }
    p = portfolio_configure(
        spec=parse_allocation_config(alloc, source="alloc.yaml"),
        risk=parse_risk_config(yaml.safe_load(LIMITS), source="risk.yaml"),
        source="test",
    )
    closes = selectors.price_frame(end=date(2022, 9, 30))
    portfolio_apply(portfolio=p, closes=closes, start=start)
    p.refresh_from_db()
    assert Position.objects.filter(strategy__portfolio=p).count() >= 5
    return p
