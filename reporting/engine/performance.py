"""Performance statistics of one daily return series.

Shapes and units. ``returns`` is a ``pd.Series`` of daily simple returns (0.01 = +1 %) on a
strictly increasing ``DatetimeIndex`` of trading days, no NaN (see ``checks``). Every ratio
and fraction is a plain float (0.25 = 25 %). Conventions (DESIGN.md "Conventions for
numbers", empyrical's definitions where the field differs): 252 trading days a year;
geometric annual return; sample standard deviation (ddof=1); the risk-free rate ``rf`` is an
annual simple rate, applied as the constant daily rate ``rf / 252``; drawdown is a negative
fraction of the running peak of the equity curve that starts at 1 *before* the first return
(so a loss on day one is a drawdown, as in empyrical).

The metrics this module shares with the risk side (annual volatility, Sharpe, downside
deviation, Sortino, drawdown series, max drawdown, win rate, profit factor) are defined
once, in ``risk.engine.metrics``, and imported here under the same names; this module
keeps what is its own: the headline bundle, total and annual return, Calmar, moments,
drawdown periods, calendar aggregation and closed-trade tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from risk.engine.metrics import (
    TRADING_DAYS,
    annual_volatility,
    downside_deviation,
    drawdown_series,
    max_drawdown,
    profit_factor,
    sharpe_ratio,
    sortino_ratio,
    win_rate,
)
from scipy import stats as sps

from reporting.engine.checks import checked_returns

__all__ = [  # the shared definitions are part of this module's public names
    "TRADING_DAYS",
    "PerformanceStats",
    "TradeStats",
    "annual_return",
    "annual_volatility",
    "calmar_ratio",
    "downside_deviation",
    "drawdown_periods",
    "drawdown_series",
    "excess_kurtosis",
    "max_drawdown",
    "max_drawdown_duration_days",
    "monthly_returns_table",
    "performance_stats",
    "period_returns",
    "profit_factor",
    "sharpe_ratio",
    "skew",
    "sortino_ratio",
    "total_return",
    "trade_stats",
    "win_rate",
]
PERIODS = {"D": None, "M": "M", "Y": "Y"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class PerformanceStats:
    """Headline statistics of a daily return series; each field is defined by the function
    of the same name in this module (``performance_stats`` lists them)."""

    n_days: int
    total_return: float
    annual_return: float
    annual_volatility: float
    sharpe_ratio: float
    sortino_ratio: float
    calmar_ratio: float
    max_drawdown: float
    max_drawdown_duration_days: int
    win_rate: float
    profit_factor: float
    best_day: float
    worst_day: float
    best_month: float
    worst_month: float
    skew: float
    excess_kurtosis: float


def performance_stats(returns: pd.Series, rf: float = 0.0) -> PerformanceStats:
    """All headline statistics of ``returns`` (daily simple returns, no NaN, n >= 1) with the
    annual risk-free rate ``rf`` (used by Sharpe and Sortino only, as ``rf / 252`` a day).
    best/worst day are max/min of the daily returns; best/worst month are max/min of
    ``period_returns(returns, "M")`` (calendar months compounded from daily returns; a
    partial first or last month counts as it is)."""
    r = checked_returns(returns)
    if len(r) == 0:
        raise ValueError("returns is empty")
    months = period_returns(r, "M")
    return PerformanceStats(
        n_days=len(r),
        total_return=total_return(r),
        annual_return=annual_return(r),
        annual_volatility=annual_volatility(r),
        sharpe_ratio=sharpe_ratio(r, rf),
        sortino_ratio=sortino_ratio(r, rf),
        calmar_ratio=calmar_ratio(r),
        max_drawdown=max_drawdown(r),
        max_drawdown_duration_days=max_drawdown_duration_days(r),
        win_rate=win_rate(r),
        profit_factor=profit_factor(r),
        best_day=float(r.max()),
        worst_day=float(r.min()),
        best_month=float(months.max()),
        worst_month=float(months.min()),
        skew=skew(r),
        excess_kurtosis=excess_kurtosis(r),
    )


def total_return(returns: pd.Series) -> float:
    """prod(1 + r_t) - 1 over all days."""
    return float(np.prod(1.0 + returns.to_numpy(dtype=float)) - 1.0)


def annual_return(returns: pd.Series) -> float:
    """Geometric (CAGR): prod(1 + r_t) ** (252 / n) - 1, n = number of daily returns. A
    wiped-out book (growth <= 0) is -1. NaN for an empty series."""
    n = len(returns)
    if n == 0:
        return math.nan
    growth = total_return(returns) + 1.0
    return -1.0 if growth <= 0 else float(growth ** (TRADING_DAYS / n) - 1.0)


def calmar_ratio(returns: pd.Series) -> float:
    """annual_return / |max_drawdown| over the whole sample; NaN when there is no drawdown
    (as empyrical)."""
    mdd = max_drawdown(returns)
    if not mdd < 0:
        return math.nan
    return annual_return(returns) / abs(mdd)


def skew(returns: pd.Series) -> float:
    """Adjusted Fisher-Pearson sample skewness G1 = sqrt(n(n-1))/(n-2) * m3 / m2**1.5 (m_k
    central moments with divisor n): scipy.stats.skew(bias=False), which is also what
    pandas' Series.skew and so quantstats report. NaN with fewer than 3 days."""
    if len(returns) < 3:
        return math.nan
    return float(sps.skew(returns.to_numpy(dtype=float), bias=False))


def excess_kurtosis(returns: pd.Series) -> float:
    """Sample excess kurtosis G2 (normal = 0), bias-corrected:
    ((n+1) m4/m2**2 - 3(n-1)) (n-1) / ((n-2)(n-3)) = scipy.stats.kurtosis(fisher=True,
    bias=False) = pandas' Series.kurt (quantstats' kurtosis). NaN with fewer than 4 days."""
    if len(returns) < 4:
        return math.nan
    return float(sps.kurtosis(returns.to_numpy(dtype=float), fisher=True, bias=False))


# --- drawdowns --------------------------------------------------------------------------


def _underwater_runs(dd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, last) positions of each maximal run of dd < 0."""
    under = np.concatenate(([0], (dd < 0).astype(np.int8), [0]))
    edges = np.diff(under)
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def max_drawdown_duration_days(returns: pd.Series) -> int:
    """Longest drawdown in trading days, from the last day at the peak to the first day back
    at or above it (the number of daily returns in between, so a one-day dip that recovers
    the next day lasts 2), or to the last day when not recovered. 0 if never under water."""
    durations = drawdown_periods(returns, top=None)["duration_days"]
    return int(durations.max()) if len(durations) else 0


def drawdown_periods(returns: pd.Series, top: int | None = 10) -> pd.DataFrame:
    """The ``top`` deepest drawdown periods (all when None), deepest first, like pyfolio's
    gen_drawdown_table. A period is a maximal run of days with dd_t < 0 (see
    ``drawdown_series``). Columns:

    peak: last date at the running peak before the run (NaT when the peak is the starting
    capital, i.e. the run starts on the first day); start: first date under water; trough:
    date of the lowest dd_t in the run (first one on ties); recovery: first date with
    E_t >= peak (NaT if not recovered by the last day); depth: min dd_t (negative fraction);
    duration_days: trading days from peak to recovery, or to the last day when not
    recovered (``max_drawdown_duration_days``)."""
    r = checked_returns(returns)
    # Position 0 is the starting capital (never under water), position p >= 1 is date p - 1.
    dd = np.concatenate(([0.0], drawdown_series(r.to_numpy(dtype=float))))
    first, last = _underwater_runs(dd)
    dates = pd.DatetimeIndex([pd.NaT]).append(r.index)
    columns = ["peak", "start", "trough", "recovery", "depth", "duration_days"]
    if len(first) == 0:
        return pd.DataFrame({c: [] for c in columns}).astype(
            {c: "datetime64[ns]" for c in columns[:4]} | {"depth": float, "duration_days": int}
        )
    # reduceat over [first, last + 1) pairs: the minimum of each run (a 0 pads the end).
    bounds = np.column_stack((first, last + 1)).ravel()
    depth = np.minimum.reduceat(np.append(dd, 0.0), bounds)[::2]
    order = np.argsort(depth, kind="stable")[:top]
    n = len(dd) - 1
    recovered = last[order] + 1 <= n
    end = np.where(recovered, last[order] + 1, n)
    troughs = [
        a + int(np.argmin(dd[a : b + 1])) for a, b in zip(first[order], last[order], strict=True)
    ]
    return pd.DataFrame(
        {
            "peak": dates[first[order] - 1],
            "start": dates[first[order]],
            "trough": dates[troughs],
            "recovery": dates[end].where(recovered),
            "depth": depth[order],
            "duration_days": (end - (first[order] - 1)).astype(int),
        }
    )


# --- calendar aggregation ----------------------------------------------------------------


def period_returns(returns: pd.Series, freq: str = "M") -> pd.Series:
    """Returns compounded per calendar period: R_P = prod_{t in P}(1 + r_t) - 1. ``freq`` is
    "D" (the daily returns, unchanged), "M" (calendar month) or "Y" (calendar year). Each
    period is labelled with its last trading date in ``returns``; periods without a trading
    day are absent. Equals empyrical.aggregate_returns (which labels by (year, month))."""
    if freq not in PERIODS:
        raise ValueError(f"freq must be one of {sorted(PERIODS)}, got {freq!r}")
    r = checked_returns(returns)
    if freq == "D":
        return r.copy()
    key = r.index.to_period(PERIODS[freq])
    growth = (1.0 + r).groupby(key).prod()
    labels = r.index.to_series().groupby(key).max()
    return pd.Series(growth.to_numpy() - 1.0, index=pd.DatetimeIndex(labels.to_numpy()))


def monthly_returns_table(returns: pd.Series) -> pd.DataFrame:
    """Years x months heatmap: rows are calendar years (int, ascending), columns "Jan" ..
    "Dec" hold ``period_returns(returns, "M")`` and "Year" the year compounded from its
    daily returns (= prod over its months of (1 + R_m) - 1). A month with no trading day
    in ``returns`` is NaN (quantstats fills 0, which reads as "flat")."""
    monthly = period_returns(returns, "M")
    table = pd.DataFrame(
        {"year": monthly.index.year, "month": monthly.index.month, "r": monthly.to_numpy()}
    ).pivot(index="year", columns="month", values="r")
    table = table.reindex(columns=range(1, 13))
    table.columns = list(MONTHS)
    yearly = period_returns(returns, "Y")
    table["Year"] = pd.Series(yearly.to_numpy(), index=yearly.index.year)
    table.index.name = "year"
    return table


# --- closed trades -----------------------------------------------------------------------

TRADE_COLUMNS = ("strategy", "realized_pnl", "entry_date", "exit_date")
ALL_STRATEGIES = "ALL"


@dataclass(frozen=True)
class TradeStats:
    """Closed-trade statistics (``trade_stats``).

    by_strategy: one row per strategy (sorted) plus a last row "ALL" over every trade, with
    n_trades, n_winners, n_losers, win_rate, avg_winner, avg_loser, win_loss_ratio,
    profit_factor, total_pnl, hold_days_mean, hold_days_median, hold_days_p25,
    hold_days_p75, hold_days_max.
    hold_days: holding time of each trade in calendar days, on the input's index (for a
    histogram).
    trades_per_month: closed trades counted by exit month, rows every calendar month from
    the first to the last exit (month-start timestamps, zero-filled), one column per
    strategy.
    """

    by_strategy: pd.DataFrame
    hold_days: pd.Series
    trades_per_month: pd.DataFrame


def trade_stats(trades: pd.DataFrame) -> TradeStats:
    """Statistics of closed trades. ``trades`` has one row per closed trade with columns
    strategy (label), realized_pnl (account currency, after costs), entry_date and exit_date
    (dates, exit >= entry). Definitions, per strategy and overall:

    win_rate and profit_factor are ``risk.engine.metrics``' (scratch trades, pnl == 0, are
    neither wins nor losses); avg_winner = mean(pnl | pnl > 0) (> 0), avg_loser =
    mean(pnl | pnl < 0) (< 0), NaN when there is none; win_loss_ratio = avg_winner /
    |avg_loser|;
    hold_days = (exit_date - entry_date) in calendar days (a same-day round trip is 0).
    """
    missing = [c for c in TRADE_COLUMNS if c not in trades.columns]
    if missing:
        raise ValueError(f"trades lacks columns {missing}; needs {list(TRADE_COLUMNS)}")
    pnl = trades["realized_pnl"].astype("float64")
    if not np.isfinite(pnl.to_numpy()).all():
        raise ValueError("trades.realized_pnl must be finite")
    entry = pd.to_datetime(trades["entry_date"])
    exit_ = pd.to_datetime(trades["exit_date"])
    if entry.isna().any() or exit_.isna().any() or (exit_ < entry).any():
        raise ValueError("trades need entry_date <= exit_date on every row")
    hold = (exit_ - entry).dt.days.rename("hold_days")
    frame = pd.DataFrame({"strategy": trades["strategy"], "pnl": pnl, "hold": hold})
    rows = {name: _trade_row(group) for name, group in frame.groupby("strategy", sort=True)}
    rows[ALL_STRATEGIES] = _trade_row(frame)
    counts = {"n_trades": int, "n_winners": int, "n_losers": int}
    by_strategy = pd.DataFrame.from_dict(rows, orient="index").astype(counts)
    by_strategy.index.name = "strategy"
    return TradeStats(
        by_strategy=by_strategy,
        hold_days=hold,
        trades_per_month=_trades_per_month(frame["strategy"], exit_),
    )


def _trade_row(group: pd.DataFrame) -> dict[str, float]:
    """One ``TradeStats.by_strategy`` row from columns pnl and hold (``trade_stats``)."""
    pnl, hold = group["pnl"], group["hold"]
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    avg_winner = float(wins.mean()) if len(wins) else math.nan
    avg_loser = float(losses.mean()) if len(losses) else math.nan
    return {
        "n_trades": len(pnl),
        "n_winners": len(wins),
        "n_losers": len(losses),
        "win_rate": win_rate(pnl),
        "avg_winner": avg_winner,
        "avg_loser": avg_loser,
        "win_loss_ratio": avg_winner / abs(avg_loser),
        "profit_factor": profit_factor(pnl),
        "total_pnl": float(pnl.sum()),
        "hold_days_mean": float(hold.mean()),
        "hold_days_median": float(hold.median()),
        "hold_days_p25": float(hold.quantile(0.25)),
        "hold_days_p75": float(hold.quantile(0.75)),
        "hold_days_max": float(hold.max()),
    }


def _trades_per_month(strategy: pd.Series, exit_: pd.Series) -> pd.DataFrame:
    """Counts of trades by exit month x strategy, every month in range, zero-filled."""
    month = exit_.dt.to_period("M")
    counts = pd.crosstab(month, strategy)
    if len(counts):
        counts = counts.reindex(pd.period_range(month.min(), month.max(), freq="M"), fill_value=0)
    counts.index = counts.index.to_timestamp()
    counts.index.name = "month"
    counts.columns.name = None
    return counts
