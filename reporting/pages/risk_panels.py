"""The risk page's panels read from what the risk manager measured at the last close.

One source of risk numbers: the volatility, VaR/CVaR, correlation matrix, risk and
marginal contributions and the weights they were computed with are the ones the risk
manager stored on the last ``PortfolioSnapshot`` (``risk.engine.measures``,
``risk.services.session``), on its own trailing window (``RiskBook.window_bars``) of the
books' unit returns. What it does not store (the VaR/CVaR intervals, each book's own
volatility) is computed here on that same window, with the same engine functions
(``risk.engine.var_intervals``, ``risk.engine.portfolio_risk``), never a second
definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from portfolio.models import Portfolio
from reporting import charts, selectors
from reporting.pages.common import History, finite, limit_threshold
from risk.engine.portfolio_risk import portfolio_risk
from risk.engine.var_intervals import INTERVAL_COVERAGE, tail_intervals

CONFIDENCES = (0.95, 0.99)


@dataclass(frozen=True)
class RiskWindow:
    """The risk manager's measurement of the last close: its stored ``detail`` (the
    snapshot's ``risk`` JSON), the unit-return ``frame`` it measured on (dates x books),
    and the weights ``w`` it held (None on rows stored before the weights were)."""

    detail: dict
    frame: pd.DataFrame
    bars: int
    diversification: float | None

    @property
    def weights(self) -> pd.Series | None:
        stored = self.detail.get("weights")
        if not stored or set(stored) != set(self.frame.columns):
            return None
        return pd.Series({n: float(stored[n] or 0.0) for n in self.frame.columns})

    @property
    def portfolio_returns(self) -> np.ndarray | None:
        """The window's hypothetical portfolio returns ``p_t = sum_i w_i u_{i,t}`` (the
        series the stored VaR and CVaR are quantiles of)."""
        w = self.weights
        if w is None or len(self.frame) < 2:
            return None
        return self.frame.to_numpy(dtype=float) @ w.to_numpy()


def risk_window_load(*, portfolio: Portfolio, history: History) -> RiskWindow:
    """The last close's measurement and its window (3 queries)."""
    m = selectors.risk_measurement_get(portfolio=portfolio, as_of=history.as_of)
    frame = selectors.risk_window_frame(
        portfolio=portfolio, strategies=history.strategies, bars=m["window_bars"]
    )
    return RiskWindow(m["detail"], frame, m["window_bars"], finite(m["diversification_ratio"]))


def var_panel(history: History, window: RiskWindow) -> dict:
    """Stored historical VaR/CVaR at 95 % and 99 % with the intervals of
    ``risk.engine.var_intervals`` on the window they were measured on. ``rows``: one per
    confidence with ``var``/``cvar`` (stored) and their ``*_low``/``*_high`` (None when
    unbounded). ``matches``: the window reproduces the stored VaR (else no intervals)."""
    latest = history.latest
    rp = window.portfolio_returns
    rows, matches = [], False
    if rp is not None:
        intervals = tail_intervals(rp, CONFIDENCES, INTERVAL_COVERAGE)
        stored = [finite(latest[f"var_{round(c * 100)}"]) for c in CONFIDENCES]
        matches = all(
            s is not None and math.isclose(t.var, s, rel_tol=1e-9, abs_tol=1e-12)
            for t, s in zip(intervals, stored, strict=True)
        )
    for i, c in enumerate(CONFIDENCES):
        k = round(c * 100)
        row = {"level": k, "var": finite(latest[f"var_{k}"]), "cvar": finite(latest[f"cvar_{k}"])}
        if matches:
            t = intervals[i]
            row |= {
                "var_low": _bound(t.var_interval.low),
                "var_high": _bound(t.var_interval.high),
                "cvar_low": _bound(t.cvar_interval.low),
                "cvar_high": _bound(t.cvar_interval.high),
                "achieved": t.var_interval.achieved,
            }
        rows.append(row)
    return {
        "rows": rows,
        "intervals": matches,
        "no_interval_reason": None if matches else _no_interval_reason(window, rp),
        "coverage": INTERVAL_COVERAGE,
        "observations": 0 if rp is None else len(rp),
        "window_bars": window.bars,
    }


def _no_interval_reason(window: RiskWindow, rp) -> str:
    """Why the VaR panel has no intervals: "books" (the stored weights are of other books:
    a strategy added or removed since that close), "unstored" (a record from before the
    weights were stored, or under 2 days of window), "mismatch" (the window no longer
    reproduces the stored VaR)."""
    stored = window.detail.get("weights")
    if rp is None and stored and set(stored) != set(window.frame.columns):
        return "books"
    return "unstored" if rp is None else "mismatch"


def _bound(x: float) -> float | None:
    return x if math.isfinite(x) else None


def volatility_target(portfolio: Portfolio) -> float | None:
    """The portfolio's configured annualized volatility target: ``allocation_params
    .vol_target`` of the hierarchical risk budget (``portfolio.engine.allocation``, the
    only method that scales the whole portfolio toward a volatility); None otherwise."""
    if portfolio.allocation_method != "hierarchical_risk_budget":
        return None
    return finite((portfolio.allocation_params or {}).get("vol_target"))


def book_volatility_targets(history: History) -> list[dict]:
    """The books' own sizing targets (``risk_config.volatility_target``,
    ``portfolio.engine.sizing``: each book scales its positions toward it), for the
    caption that says they are not the portfolio's target; books without one left out."""
    rows = []
    for s in history.strategies:
        target = finite((s.risk_config or {}).get("volatility_target"))
        if target is not None:
            rows.append({"name": s.name, "target": target})
    return rows


def decomposition(history: History, window: RiskWindow) -> dict:
    """Each book's stored share of portfolio volatility and marginal contribution
    ``(S w)_i / sqrt(w'Sw)`` with the weights ``w_i`` the risk manager held; ``rc_i =
    share_i x vol`` (= ``w_i x marginal_i``, summing to the stored portfolio volatility).
    Each book's own volatility ``sigma_i`` is ``portfolio_risk``'s on the same window."""
    detail, w = window.detail, window.weights
    share = detail.get("risk_contribution") or {}
    marginal = detail.get("marginal_contribution") or {}
    vol = finite(history.latest["volatility"])
    if not share or vol is None:
        return {"risk_rows": []}
    sigma = {}
    if w is not None and len(window.frame) >= 2:
        risk = portfolio_risk(window.frame, w, lookback_days=max(window.bars, 2))
        sigma = dict(zip(risk.strategies, risk.strategy_volatilities.tolist(), strict=True))
    equity_weight = history.wide("weight").iloc[-1]
    rows = []
    for name in history.names:
        s = finite(share.get(name))
        rows.append(
            {
                "name": name,
                "equity_weight": finite(equity_weight.get(name)),
                "weight": None if w is None else finite(w[name]),
                "vol": finite(sigma.get(name)),
                "marginal": finite(marginal.get(name)),
                "share": s,
                "rc": None if s is None else s * vol,
            }
        )
    rc = pd.Series({r["name"]: r["rc"] or 0.0 for r in rows})
    return {
        "risk_rows": rows,
        "risk_total": vol,
        "risk_window": window.bars,
        "diversification": window.diversification,
        "figures_risk": charts.risk_decomposition_figure(
            rc, pd.Series({r["name"]: r["marginal"] for r in rows}, dtype=float)
        ),
    }


def correlation(history: History, window: RiskWindow, limits) -> dict:
    """The stored correlation matrix of the books' unit returns over the risk manager's
    window, its pairs sorted high to low, flagged above the strategy_correlation limit."""
    threshold = limit_threshold(limits, scope="portfolio", metric="strategy_correlation")
    stored = window.detail.get("correlation")
    names = [n for n in history.names if stored and n in stored]
    if len(names) < 2:
        return {"correlation_pairs": [], "correlation_threshold": threshold}
    corr = pd.DataFrame(
        [[_nan(stored[a].get(b)) for b in names] for a in names], index=names, columns=names
    )
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            value = finite(corr.loc[a, b])
            alert = value is not None and threshold is not None and value > threshold
            pairs.append({"a": a, "b": b, "value": value, "alert": alert})
    pairs.sort(key=lambda p: -(p["value"] if p["value"] is not None else -2))
    frame = window.frame.reindex(columns=names)
    return {
        "correlation_pairs": pairs,
        "correlation_threshold": threshold,
        "correlation_window": len(frame),
        "figures_correlation": charts.correlation_figure(corr, frame, threshold, len(frame)),
    }


def _nan(x) -> float:
    return math.nan if x is None else float(x)
