"""Backtests: history replayed through the same path as the live book (``portfolio_apply``).

A backtest gets its own portfolio (``is_backtest``), named after the config file's
portfolio with " (backtest)" unless a name is given; an earlier backtest of the same name is
replaced. Prices come from the database (the bundled set is loaded first if the database
has none) or, with ``data_path``, from a CSV file that is validated strictly and used in
memory only, so a user's file never overwrites stored prices. History before ``start`` is
used for the signals' lookbacks; capital is deployed from the first date applied.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
from django.db import transaction

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.bars import validate_bars
from portfolio.engine.errors import ConfigError, DataValidationError
from portfolio.feeds import BundledProvider, CsvProvider
from portfolio.models import Portfolio, PortfolioSnapshot, RebalanceEvent, StrategySnapshot, Trade
from portfolio.services.config import allocation_spec_read
from portfolio.services.prices import (
    instruments_sync,
    known_infos,
    plausibility_default,
    price_file_max_bytes,
    prices_load,
    tickers_check,
)
from risk.models import RiskLimit
from risk.selectors import violation_records
from risk.services import risk_spec_read


def backtest_run(
    *,
    config_path: str | Path,
    data_path: str | Path | None = None,
    start: date | None = None,
    end: date | None = None,
    name: str | None = None,
    risk_path: str | Path | None = None,
    add_tickers: list[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Run a backtest and return its summary (see ``backtest_summary``). With
    ``risk_path`` its limits apply exactly as they do to the live book (the same risk
    manager in the same update path); without it no limit applies (the risk measures are
    still computed and reported), and the summary says so. A strategy's trade approval
    does not apply (every decision counts as approved); ``approval_ignored`` names the
    strategies it was configured for. ``add_tickers``: new tickers the ``data_path`` file
    may add as instruments (others must exist already). ``progress``: dates applied, as
    for ``portfolio_apply``.

    Everything is read and checked before the earlier backtest of the same name is
    deleted, so a bad file or option leaves that backtest as it was."""
    spec = allocation_spec_read(config_path)
    risk = risk_spec_read(risk_path) if risk_path is not None else None
    if start and end and start > end:
        raise ConfigError("--start/--end", f"start {start} is after end {end}")
    closes = _closes(data_path, end, tickers_check(add_tickers))
    if start is not None and not (closes.index >= pd.Timestamp(start)).any():
        raise ConfigError("--start", f"no price date on or after {start}")
    name = name or f"{spec.name} (backtest)"
    live = Portfolio.objects.filter(name=name, is_backtest=False).exists()
    if live:
        raise ConfigError("--name", f"{name!r} is a live portfolio; choose another name")
    with transaction.atomic():
        Portfolio.objects.filter(name=name, is_backtest=True).delete()
        portfolio = portfolio_configure(
            spec=spec,
            risk=risk,
            source=str(config_path),
            actor="backtest",
            is_backtest=True,
            name=name,
        )
        # Nobody reviews a backtest's orders: trade approval would leave a gated book flat,
        # so a backtest approves every decision, which trades exactly as no gate does.
        gated = portfolio.strategies.filter(approval_required=True)
        ungated = sorted(gated.values_list("name", flat=True))
        gated.update(approval_required=False)
    portfolio_apply(portfolio=portfolio, closes=closes, as_of=end, start=start, progress=progress)
    return {**backtest_summary(portfolio), "approval_ignored": ungated}


def _closes(data_path, end, add_tickers: set[str]) -> pd.DataFrame:
    if data_path is None:
        if not selectors.price_frame().shape[1]:
            prices_load(provider=BundledProvider(), strict=True)
        closes = selectors.price_frame(end=end)
        if closes.empty:
            raise ConfigError("--end", f"no stored price on or before {end}")
        return closes
    provider = CsvProvider(str(data_path), max_bytes=price_file_max_bytes())
    infos = known_infos(provider, add_tickers)
    validated = validate_bars(
        provider.fetch(),
        source=provider.source,
        known_tickers={i.ticker for i in infos},
        strict=True,
        plausibility=plausibility_default(),
    )
    bars = validated.bars
    wide = bars.pivot(index="date", columns="ticker", values="close").sort_index()
    wide.index = pd.to_datetime(wide.index)
    wide.columns.name = None
    if end is not None:
        wide = wide.loc[: pd.Timestamp(end)]
    if wide.empty:
        raise DataValidationError(provider.source, f"has no price on or before {end}")
    instruments_sync(infos)
    return wide.astype(float)


def backtest_summary(portfolio: Portfolio) -> dict:
    """The JSON contract scripts rely on::

    portfolio.final_equity, portfolio.equity {ISO date: value}
    strategies.<name>.final_equity, .equity {ISO date: value}, .weight {ISO date: share}
    rebalances [ISO dates], trades (count)
    risk_limits: the YAML the limits came from, or null when none applied
    violations [{date, limit, severity, strategy, ticker, action, value, threshold,
                 status, resolved_on}] in bar order
    risk.<field> {ISO date: value} for volatility, var_95, var_99, cvar_95, cvar_99,
                 diversification_ratio, max_correlation (dates without a value omitted)
    """
    equity = {
        d.isoformat(): float(v)
        for d, v in PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("date")
        .values_list("date", "equity")
    }
    strategies: dict[str, dict] = {}
    rows = (
        StrategySnapshot.objects.filter(strategy__portfolio=portfolio)
        .order_by("strategy__position_order", "date")
        .values_list("strategy__name", "date", "equity", "weight")
    )
    for name, d, eq, weight in rows:
        s = strategies.setdefault(name, {"equity": {}, "weight": {}})
        s["equity"][d.isoformat()] = float(eq)
        s["weight"][d.isoformat()] = float(weight)
    for s in strategies.values():
        s["final_equity"] = list(s["equity"].values())[-1] if s["equity"] else None
    dates = list(equity)
    return {
        "portfolio": {
            "name": portfolio.name,
            "initial_capital": float(portfolio.initial_capital),
            "final_equity": equity[dates[-1]] if dates else None,
            "start": dates[0] if dates else None,
            "end": dates[-1] if dates else None,
            "equity": equity,
        },
        "strategies": strategies,
        "rebalances": [
            d.isoformat()
            for d in RebalanceEvent.objects.filter(portfolio=portfolio)
            .exclude(trigger="initial")
            .order_by("date")
            .values_list("date", flat=True)
        ],
        "trades": Trade.objects.filter(strategy__portfolio=portfolio).count(),
        "risk_limits": _limits_source(portfolio),
        "violations": _violations(portfolio),
        "risk": _risk_series(portfolio),
    }


RISK_FIELDS = (
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "diversification_ratio",
    "max_correlation",
)


def _limits_source(portfolio: Portfolio) -> str | None:
    limits = RiskLimit.objects.filter(portfolio=portfolio, enabled=True)
    sources = sorted({s.split(":")[0] for s in limits.values_list("source", flat=True)})
    return ", ".join(sources) if sources else None


def _violations(portfolio: Portfolio) -> list[dict]:
    keys = ("date", "limit", "severity", "strategy", "ticker", "action", "value", "threshold")
    keys += ("status", "resolved_on")
    return [
        {k: v[k].isoformat() if hasattr(v[k], "isoformat") else v[k] for k in keys}
        for v in violation_records(portfolio=portfolio)
    ]


def _risk_series(portfolio: Portfolio) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {f: {} for f in RISK_FIELDS}
    rows = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date")
    for d, *values in rows.values_list("date", *RISK_FIELDS):
        for f, v in zip(RISK_FIELDS, values, strict=True):
            if v is not None:
                out[f][d.isoformat()] = v
    return out
