"""What the risk manager measures at each close (pure; DESIGN.md "Conventions for numbers").

Inputs come from the engine state of a portfolio at step 4 of the daily cycle: each book's
cash and signed holdings, the marks (last close per ticker), contract multipliers, and the
trailing *unit* returns of the strategies (``T x N``: each book's daily return divided by
the exposure it held, so the series stay comparable when the risk manager scales books).

Conventions. Weights of strategies on unit returns are ``w_i = (E_i / E) * X_i`` where
``E_i`` is the book's equity, ``E`` the portfolio's and ``X_i`` the exposure the book holds
now (the portfolio's exposure scale times the risk multipliers): the portfolio's ex-ante
daily return is ``sum_i w_i u_i``. ``S`` is the sample covariance (ddof=1) of the unit
returns over the window. Then

* volatility (ex-ante, annualized) ``sqrt(252 * w'Sw)``;
* historical VaR at confidence c: ``-quantile(p, 1-c)`` (numpy's linear interpolation) of
  the window's hypothetical portfolio returns ``p_t = sum_i w_i u_{i,t}``; CVaR:
  ``-mean(p_t | p_t <= quantile)``; both positive loss fractions of equity, one day;
* parametric VaR ``-(mean(p) + z_(1-c) * std(p))``, CVaR ``-(mean(p) - std(p) *
  phi(z_(1-c)) / (1-c))`` (normal);
* diversification ratio ``sum_i w_i sigma_i / sqrt(w'Sw)`` (Choueifaty; >= 1 diversifies);
* risk contribution ``w_i (Sw)_i / sqrt(w'Sw)`` (sums to the daily vol);
* max strategy correlation: the largest off-diagonal Pearson correlation of the unit
  returns of the strategies that varied in the window (paused ones included);
* netting: per ticker the signed quantities of every book are summed; a ticker's weight
  is ``|net quantity * mark * multiplier| / E``; top-5 concentration is the sum of the five
  largest; leverage is ``sum_t |net mv_t| / E`` (positions netted across books) and gross
  leverage (not netted) ``sum_books sum_t |mv| / E``;
* per strategy: leverage ``(long + |short|) / E_i``, drawdown ``nav / peak nav - 1`` (flows
  excluded; the peak since the risk manager last acted on the book), volatility
  ``sqrt(252) * X_i * sigma_i`` (ex-ante), position count.
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
from scipy.stats import norm

TRADING_DAYS = 252


@dataclass(frozen=True)
class BookView:
    """One book at the close: what the measures need."""

    name: str
    active: bool
    equity: float
    quantities: dict[str, float]
    nav: float
    peak_nav: float
    exposure: float  # X_i: portfolio exposure scale x risk multipliers


@dataclass(frozen=True)
class Measures:
    portfolio: dict[str, float]
    strategies: dict[str, dict[str, float]]
    tickers: dict[str, float]  # net weight per ticker (positive fraction of equity)
    detail: dict = field(default_factory=dict)


def netted_positions(books: list[BookView]) -> dict[str, dict[str, float]]:
    """Per ticker: the net signed quantity and each book's signed quantity."""
    out: dict[str, dict[str, float]] = {}
    for b in books:
        for t, q in b.quantities.items():
            row = out.setdefault(t, {"net": 0.0})
            row["net"] += q
            row[b.name] = row.get(b.name, 0.0) + q
    return out


def portfolio_weights(books: list[BookView]) -> np.ndarray:
    """``w_i = (E_i / E) * X_i`` (module docstring)."""
    total = math.fsum(b.equity for b in books)
    if not total > 0:
        return np.zeros(len(books))
    return np.array([b.equity / total * b.exposure for b in books])


def var_cvar_historical(p: np.ndarray, confidence: float) -> tuple[float, float]:
    """Historical one-day VaR and CVaR (positive loss fractions) of returns ``p``."""
    if len(p) < 2:
        return math.nan, math.nan
    q = float(np.quantile(p, 1.0 - confidence))
    return -q, -float(p[p <= q].mean())


def var_cvar_parametric(p: np.ndarray, confidence: float) -> tuple[float, float]:
    """Normal one-day VaR and CVaR from the mean and sample std (ddof=1) of ``p``."""
    if len(p) < 2:
        return math.nan, math.nan
    mu, sd = float(p.mean()), float(p.std(ddof=1))
    z = norm.ppf(1.0 - confidence)
    return -(mu + z * sd), -(mu - sd * norm.pdf(z) / (1.0 - confidence))


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
    resets them when it acts); without them a book's own running peak NAV is used."""
    strategy_peaks = strategy_peaks or {}
    total = math.fsum(b.equity for b in books)
    net = netted_positions(books)
    mv = {t: row["net"] * marks[t] * multipliers.get(t, 1.0) for t, row in net.items()}
    tickers = {t: abs(v) / total for t, v in mv.items() if total > 0 and abs(v) > 0}
    gross_books = math.fsum(
        abs(q) * marks[t] * multipliers.get(t, 1.0) for b in books for t, q in b.quantities.items()
    )
    top = sorted(tickers.values(), reverse=True)[:5]
    portfolio = {
        "leverage": math.fsum(abs(v) for v in mv.values()) / total if total > 0 else 0.0,
        "gross_leverage": gross_books / total if total > 0 else 0.0,
        "drawdown": total / risk_peak - 1.0 if risk_peak > 0 else 0.0,
        "top5_concentration": math.fsum(top),
        "positions_net": float(sum(1 for v in mv.values() if abs(v) > 0)),
        "positions_gross": float(sum(len(b.quantities) for b in books)),
    }
    w = portfolio_weights(books)
    window_returns = unit_returns[-window:] if len(unit_returns) else unit_returns
    portfolio.update(_return_measures(books, w, window_returns))
    strategies = {}
    sig = (
        np.std(window_returns, axis=0, ddof=1)
        if len(window_returns) >= 2
        else np.full(len(books), math.nan)
    )
    for i, b in enumerate(books):
        gross = math.fsum(
            abs(q) * marks[t] * multipliers.get(t, 1.0) for t, q in b.quantities.items()
        )
        strategies[b.name] = {
            "leverage": gross / b.equity if b.equity > 0 else 0.0,
            "drawdown": b.nav / strategy_peaks.get(b.name, b.peak_nav) - 1.0
            if strategy_peaks.get(b.name, b.peak_nav) > 0
            else 0.0,
            "volatility": math.sqrt(TRADING_DAYS) * b.exposure * float(sig[i]),
            "positions_count": float(len(b.quantities)),
        }
    detail = {"net": {t: row["net"] for t, row in net.items()}, "weights": w.tolist()}
    return Measures(portfolio, strategies, tickers, detail)


def _return_measures(books: list[BookView], w: np.ndarray, u: np.ndarray) -> dict[str, float]:
    out = dict.fromkeys(
        [
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
        ],
        math.nan,
    )
    if len(u) < 2:
        return out
    cov = np.atleast_2d(np.cov(u, rowvar=False, ddof=1))
    variance = float(w @ cov @ w)
    out["volatility"] = math.sqrt(TRADING_DAYS * max(variance, 0.0))
    p = u @ w
    for c in (0.95, 0.99):
        k = round(c * 100)
        out[f"var_{k}"], out[f"cvar_{k}"] = var_cvar_historical(p, c)
        out[f"var_{k}_parametric"], out[f"cvar_{k}_parametric"] = var_cvar_parametric(p, c)
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if variance > 0:
        out["diversification_ratio"] = float(w @ sd) / math.sqrt(variance)
    # every book that varied, paused ones too: a paused book keeps its positions, and
    # pausing one of a correlated pair must not by itself make the breach disappear
    live = [i for i in range(len(books)) if sd[i] > 0]
    if len(live) >= 2:
        corr = np.corrcoef(u[:, live], rowvar=False)
        out["strategy_correlation"] = float(np.max(corr[~np.eye(len(live), dtype=bool)]))
    return out


def risk_contributions(w: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``w_i (Sw)_i / sqrt(w'Sw)`` (daily), summing to the portfolio's daily vol."""
    cov = np.atleast_2d(np.cov(u, rowvar=False, ddof=1))
    sw = cov @ w
    vol = math.sqrt(float(w @ sw))
    return w * sw / vol if vol > 0 else np.zeros(len(w))
