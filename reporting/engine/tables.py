"""Export tables: database rows in, one tidy ``pd.DataFrame`` per table out (no Django).

Shapes and units. Each builder takes the tuples a selector read with ``values_list``, in
the column order its docstring names (Decimals, None and ``datetime.date`` allowed), and
returns a frame with fixed columns in that order. Numbers are float64 (a Decimal becomes
the nearest double, None becomes NaN), money in the portfolio's currency, quantities in
units of the instrument, ratios as fractions (0.25 = 25 %). Dates stay ``datetime.date``
objects (None where empty); timestamps are naive UTC ``datetime`` objects. Nothing is
rounded: the writers print the shortest text that reads back as the same double.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

TRADE_COLUMNS = (
    "date",
    "strategy",
    "ticker",
    "side",
    "quantity",
    "price",
    "value",
    "cost",
    "realized_pnl",
    "reason",
    "detail",
)
TRADE_NUMBERS = ("quantity", "price", "value", "cost", "realized_pnl")

POSITION_COLUMNS = (
    "strategy",
    "ticker",
    "quantity",
    "avg_entry_price",
    "entry_date",
    "last_close",
    "market_value",
    "unrealized_pnl",
)

RISK_COLUMNS = (
    "date",
    "leverage",
    "drawdown",
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "diversification_ratio",
    "max_correlation",
    "concentration_top5",
    "open_mae",
)

VIOLATION_COLUMNS = (
    "date",
    "limit",
    "severity",
    "strategy",
    "ticker",
    "value",
    "threshold",
    "action",
    "status",
    "message",
    "resolved_on",
    "opened_at_utc",
    "resolved_at_utc",
)
VIOLATION_NUMBERS = ("value", "threshold")


def _floats(values: Iterable) -> np.ndarray:
    """float64 array: Decimal -> nearest double, None -> NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def rows_frame(rows: Sequence[tuple], columns: Sequence[str], numbers: Sequence[str]):
    """A frame of ``rows`` with ``columns``; the ``numbers`` columns as float64, the others
    as they are (object). Zero rows give the empty frame with the same columns."""
    frame = pd.DataFrame.from_records(list(rows), columns=list(columns))
    for col in numbers:
        frame[col] = _floats(frame[col])
    return frame


def trades_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """Fills in date order. Rows: ``TRADE_COLUMNS`` (quantity positive, ``side`` buy/sell;
    value = quantity x price x multiplier; cost = commission + slippage in money;
    realized_pnl booked by this fill)."""
    return rows_frame(rows, TRADE_COLUMNS, TRADE_NUMBERS)


def positions_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """Open positions marked to the last close. Rows: (strategy, ticker, quantity,
    avg_entry_price, entry_date, multiplier, last_close); quantity signed (negative =
    short). Adds market_value = quantity x last_close x multiplier and unrealized_pnl =
    (last_close - avg_entry_price) x quantity x multiplier (as the book computes it); both
    NaN when there is no close."""
    columns = (
        "strategy",
        "ticker",
        "quantity",
        "avg_entry_price",
        "entry_date",
        "multiplier",
        "last_close",
    )
    frame = rows_frame(rows, columns, ("quantity", "avg_entry_price", "multiplier", "last_close"))
    q, mult, close = frame["quantity"], frame["multiplier"], frame["last_close"]
    frame["market_value"] = q * close * mult
    frame["unrealized_pnl"] = (close - frame["avg_entry_price"]) * q * mult
    return frame[list(POSITION_COLUMNS)]


def risk_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """The portfolio's risk metrics per close. Rows: ``RISK_COLUMNS``. Leverage = gross
    exposure / equity; drawdown <= 0; VaR and CVaR are positive one-day loss fractions of
    equity; the risk manager's metrics are NaN where it has not computed them."""
    return rows_frame(rows, RISK_COLUMNS, RISK_COLUMNS[1:])


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def violations_table(rows: Sequence[tuple]) -> pd.DataFrame:
    """Limit breaches in date order. Rows: ``VIOLATION_COLUMNS`` with aware or naive
    timestamps for opened_at_utc / resolved_at_utc (returned naive, in UTC)."""
    frame = rows_frame(rows, VIOLATION_COLUMNS, VIOLATION_NUMBERS)
    for col in ("opened_at_utc", "resolved_at_utc"):
        frame[col] = pd.Series([_naive_utc(v) for v in frame[col]], index=frame.index, dtype=object)
    return frame


def equity_table(
    portfolio_rows: Sequence[tuple],
    strategy_rows: Sequence[tuple],
    strategies: Sequence[str],
    benchmark_rows: Sequence[tuple] = (),
) -> pd.DataFrame:
    """One row per portfolio snapshot date: date, portfolio_equity, then ``<s>_equity`` for
    each strategy in ``strategies`` order, ``<s>_weight`` likewise (equity / portfolio
    equity), and ``<ticker>_close`` for each benchmark (sorted). Rows:
    ``portfolio_rows`` (date, equity); ``strategy_rows`` (strategy, date, equity, weight);
    ``benchmark_rows`` (ticker, date, close). A strategy or benchmark without a value on a
    date is NaN there; values on dates the portfolio has no snapshot for are dropped."""
    if "portfolio" in strategies:  # its column would overwrite portfolio_equity
        raise ValueError("a strategy named 'portfolio' clashes with the portfolio_equity column")
    dates = [d for d, _ in portfolio_rows]
    index = pd.Index(dates, dtype=object)
    frame = pd.DataFrame(
        {"date": dates, "portfolio_equity": _floats(e for _, e in portfolio_rows)}, index=index
    )
    equity, weight = {s: {} for s in strategies}, {s: {} for s in strategies}
    for name, d, eq, w in strategy_rows:
        if name in equity:
            equity[name][d], weight[name][d] = eq, w
    closes: dict[str, dict] = {}
    for ticker, d, close in benchmark_rows:
        closes.setdefault(ticker, {})[d] = close
    columns = {f"{s}_equity": equity[s] for s in strategies}
    columns |= {f"{s}_weight": weight[s] for s in strategies}
    columns |= {f"{t}_close": closes[t] for t in sorted(closes)}
    for col, by_date in columns.items():
        frame[col] = _floats(by_date.get(d) for d in dates)
    return frame.reset_index(drop=True)
