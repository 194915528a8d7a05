"""What the risk manager measures at each close (pure; DESIGN.md "Conventions for numbers").

Inputs come from the engine state of a portfolio at step 4 of the daily cycle: each book's
cash and signed holdings, the marks (last close per ticker), contract multipliers, and the
trailing *unit* returns of the strategies (``T x N``: each book's daily return per unit of
the exposure it held, ``portfolio.engine.cycle.unit_return``, so the series stay comparable
when the risk manager scales books).

Conventions. Weights of strategies on unit returns are ``w_i = (E_i / E) * X_i`` where
``E_i`` is the book's equity, ``E`` the portfolio's and ``X_i`` the exposure the book holds
now, ``portfolio.engine.cycle.exposure_held``: the portfolio's exposure scale times the
risk multipliers, or a paused book's gross leverage when that is larger. The portfolio's
ex-ante daily return is ``sum_i w_i u_i``. ``S`` is the sample covariance (ddof=1) of the
unit returns over the window. Then

* volatility (ex-ante, annualized) ``sqrt(252 * w'Sw)``; the formulas below live in
  ``risk.engine.portfolio_risk``, ``risk.engine.var`` and ``risk.engine.exposure``;
* historical VaR at confidence c: ``-quantile(p, 1-c)`` (numpy's linear interpolation) of
  the window's hypothetical portfolio returns ``p_t = sum_i w_i u_{i,t}``; CVaR:
  ``-mean(p_t | p_t <= quantile)``; both positive loss fractions of equity, one day;
* parametric VaR ``-(mean(p) + z_(1-c) * std(p))``, CVaR ``-(mean(p) - std(p) *
  phi(z_(1-c)) / (1-c))`` (normal);
* diversification ratio ``sum_i w_i sigma_i / sqrt(w'Sw)`` (Choueifaty; >= 1 diversifies);
* risk contribution ``w_i (Sw)_i / sqrt(w'Sw)`` (sums to the daily vol), stored as the
  share of it (``detail["risk_contribution"]``) beside the marginal contribution
  ``(Sw)_i / sqrt(w'Sw)`` (annualized, ``detail["marginal_contribution"]``) and the
  weights ``w_i`` (``detail["strategy_weights"]``) the page needs to show them;
* max strategy correlation: the largest finite off-diagonal Pearson correlation of the
  unit returns of the strategies in the window (paused ones included; a strategy that did
  not vary has none); ``detail["correlated_pair"]`` names the two strategies;
* netting: per ticker the signed quantities of every book are summed; a ticker's weight
  is ``|net quantity * mark * multiplier| / E``; top-5 concentration is the sum of the five
  largest; leverage is ``sum_t |net mv_t| / E`` (positions netted across books) and gross
  leverage (not netted) ``sum_books sum_t |mv| / E``;
* per strategy: leverage ``(long + |short|) / E_i``, drawdown ``nav / peak nav - 1`` (flows
  excluded; the peak since the risk manager last acted on the book), volatility
  ``X_i * sigma_i`` (ex-ante, ``sigma_i`` annualized), position count.
* portfolio drawdown: equity over the peak since the risk manager last liquidated, minus 1.

The return window at close t is the ``window`` bars before t: today's return enters the
estimates at the next close (the update appends it after the risk step). Fewer than 2
observations (or zero variance) gives NaN for the return-based measures; a NaN never
breaches a limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from portfolio.engine.cycle import exposure_held

from risk.engine.exposure import (
    net_positions,
    portfolio_leverage,
    ticker_concentration,
    top_concentration,
)
from risk.engine.portfolio_risk import most_correlated_pair, portfolio_risk


@dataclass(frozen=True)
class BookView:
    """One book at the close: what the measures need."""

    name: str
    active: bool
    equity: float
    quantities: dict[str, float]
    nav: float
    peak_nav: float
    exposure: float  # portfolio exposure scale x risk multipliers (X_i while active)


@dataclass(frozen=True)
class Measures:
    portfolio: dict[str, float]
    strategies: dict[str, dict[str, float]]
    tickers: dict[str, float]  # net weight per ticker (positive fraction of equity)
    detail: dict = field(default_factory=dict)


def portfolio_weights(books: list[BookView], exposures: list[float] | None = None) -> np.ndarray:
    """``w_i = (E_i / E) * X_i`` (module docstring); ``exposures`` the ``X_i`` (default each
    book's multiplier)."""
    total = math.fsum(b.equity for b in books)
    if not total > 0:
        return np.zeros(len(books))
    x = [b.exposure for b in books] if exposures is None else exposures
    return np.array([b.equity / total * xi for b, xi in zip(books, x, strict=True)])


def measure(
    books: list[BookView],
    marks: dict[str, float],
    multipliers: dict[str, float],
    unit_returns: np.ndarray,
    risk_peak: float,
    window: int = 60,
    strategy_peaks: dict[str, float] | None = None,
) -> Measures:
    """Every measure the limits use, for the close (module docstring). ``risk_peak`` and
    ``strategy_peaks`` are the peaks the drawdown limits measure from (the risk manager
    resets them when it acts); without them a book's own running peak NAV is used.
    Netting is ``exposure.net_positions``; the return measures ``portfolio_risk``."""
    strategy_peaks = strategy_peaks or {}
    total = math.fsum(b.equity for b in books)
    netted = net_positions({b.name: b.quantities for b in books}, marks, multipliers)
    lev = portfolio_leverage(netted, total)
    tickers = ticker_concentration(netted, total)
    portfolio = {
        "leverage": lev.netted_gross,
        "gross_leverage": lev.gross,
        "net_leverage": lev.net,
        "drawdown": total / risk_peak - 1.0 if risk_peak > 0 else 0.0,
        "top5_concentration": top_concentration(tickers),
        "positions_net": float(netted.net_count),
        "positions_gross": float(netted.gross_count),
    }
    grosses = [
        math.fsum(abs(q) * marks[t] * multipliers.get(t, 1.0) for t, q in b.quantities.items())
        for b in books
    ]
    x = [
        exposure_held(b.exposure, g, b.equity, b.active)
        for b, g in zip(books, grosses, strict=True)
    ]
    w = portfolio_weights(books, x)
    u = unit_returns[-window:] if len(unit_returns) else np.zeros((0, len(books)))
    risk = portfolio_risk(u, w, lookback_days=max(window, 2)) if len(u) >= 2 else None
    portfolio.update(_return_measures(risk))
    strategies = {}
    for i, (b, gross) in enumerate(zip(books, grosses, strict=True)):
        peak = strategy_peaks.get(b.name, b.peak_nav)
        sigma = float(risk.strategy_volatilities[i]) if risk is not None else math.nan
        strategies[b.name] = {
            "leverage": gross / b.equity if b.equity > 0 else 0.0,
            "drawdown": b.nav / peak - 1.0 if peak > 0 else 0.0,
            "volatility": x[i] * sigma,
            "positions_count": float(len(b.quantities)),
        }
    names = [b.name for b in books]
    detail = {
        "net": dict(netted.net_quantity),
        "weights": w.tolist(),
        "strategy_weights": {n: finite_or_none(w[i]) for i, n in enumerate(names)},
    }
    if risk is not None:
        detail["correlation"] = {
            a: {c: finite_or_none(risk.correlation[i, j]) for j, c in enumerate(names)}
            for i, a in enumerate(names)
        }
        detail["risk_contribution"] = {
            n: finite_or_none(risk.contributions.percent[i]) for i, n in enumerate(names)
        }
        detail["marginal_contribution"] = {
            n: finite_or_none(risk.contributions.marginal[i]) for i, n in enumerate(names)
        }
        detail["correlated_var_95"] = finite_or_none(risk.tail_95.correlated_var)
        pair = most_correlated_pair(risk.correlation)
        detail["correlated_pair"] = None if pair is None else [names[pair[0]], names[pair[1]]]
    return Measures(portfolio, strategies, tickers, detail)


def _return_measures(risk) -> dict[str, float]:
    if risk is None:
        return dict.fromkeys(RETURN_MEASURES, math.nan)
    out = {
        "volatility": risk.volatility,
        "diversification_ratio": risk.diversification_ratio,
        "strategy_correlation": risk.max_correlation,
    }
    for tail in (risk.tail_95, risk.tail_99):
        k = round(tail.confidence * 100)
        out[f"var_{k}"], out[f"cvar_{k}"] = tail.historical_var, tail.historical_cvar
        out[f"var_{k}_parametric"] = tail.parametric_var
        out[f"cvar_{k}_parametric"] = tail.parametric_cvar
    return out


RETURN_MEASURES = (
    "volatility",
    "var_95",
    "var_99",
    "cvar_95",
    "cvar_99",
    "var_95_parametric",
    "var_99_parametric",
    "cvar_95_parametric",
    "cvar_99_parametric",
    "diversification_ratio",
    "strategy_correlation",
)


def finite_or_none(x) -> float | None:
    """``x`` as a float, or None when it is missing or not finite (for storage). A zero is
    stored as +0.0: ``-0.0`` (say the VaR ``-quantile`` of a window of zeros) and ``0.0``
    are the same number, but PostgreSQL keeps the sign and SQLite does not, so a stored
    -0.0 would make the same bars' rows differ in their bits between databases and paths."""
    return float(x) + 0.0 if x is not None and math.isfinite(x) else None
