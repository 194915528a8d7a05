"""Page 2, risk: gauges against the limits, drawdown, VaR/CVaR, strategy correlation,
position concentration, risk contributions and the violation log."""

from __future__ import annotations

import pandas as pd

from portfolio.models import Portfolio
from reporting import charts, selectors
from reporting.engine.rolling import rolling_annual_volatility
from reporting.pages.common import History, finite, history_load, limit_threshold
from reporting.pages.params import query_date
from risk.engine.portfolio_risk import correlation_matrix, portfolio_risk
from risk.engine.severity import SEVERITIES

CORRELATION_WINDOW = 252  # trading days: one year of daily returns
COVARIANCE_WINDOW = 60  # trading days: the risk manager's window (risk.engine.measures)
VOLATILITY_WINDOW = 63
TOP_CONCENTRATION = 10
VIOLATIONS_SHOWN = 200
REVIEW_CANDIDATES_SHOWN = 30  # configuration changes a review form offers per violation
VAR_FIELDS = ("var_95", "var_99", "cvar_95", "cvar_99")


def risk_page(*, portfolio: Portfolio, params) -> dict:
    """Context of the risk page (a fixed number of queries). ``params`` (request.GET):
    severity, strategy (name), review (reviewed/unreviewed), date_from, date_to filter the
    violation log."""
    history = history_load(portfolio=portfolio)
    filters = parse_violation_filters(params, history.names)
    limits = selectors.risk_limit_list(portfolio=portfolio)
    context = {
        "portfolio": portfolio,
        "as_of": history.as_of,
        "strategies": history.strategies,
        "limits": limits,
        "filters": filters,
        "violations": _violations_with_candidates(portfolio, filters),
        "violations_limit": VIOLATIONS_SHOWN,
        "figures": {},
    }
    if history.latest is None:
        return context
    positions = selectors.position_frame(portfolio=portfolio, as_of=history.as_of)
    context.update(_gauges(history, limits))
    context["var"] = _var(history)
    context["open_positions"] = _open_positions(history)
    context["figures"].update(context.pop("gauge_figures"))
    context["drawdown_reference"] = selectors.drawdown_reference(portfolio=portfolio)
    context["figures"]["drawdown"] = charts.drawdown_figure(
        history.snapshots[["drawdown"]].rename(columns={"drawdown": "Portfolio"})
    )
    if context["var"]["has_history"]:
        frame = history.snapshots[list(VAR_FIELDS)].dropna(how="all")
        context["figures"]["var"] = charts.lines_figure(
            frame, "VaR / CVaR history (1 day, fraction of equity)", yformat=".2%"
        )
    context.update(_correlation(history, limits))
    context.update(_risk_decomposition(history))
    for key in ("correlation", "risk"):
        fig = context.pop(f"figures_{key}", None)
        if fig is not None:
            context["figures"][key] = fig
    context["figures"]["concentration"] = _concentration_figure(
        positions, float(history.latest["equity"]), limits
    )
    context["group_exposure"] = group_exposure_rows(
        positions, float(history.latest["equity"]), limits
    )
    return context


def _violations_with_candidates(portfolio: Portfolio, filters: dict) -> list:
    """The violation log's rows, each with ``review_candidates``: the configuration changes
    its review form offers (3 queries; 1 when no violation matches)."""
    violations = selectors.violation_list(
        portfolio=portfolio,
        limit=VIOLATIONS_SHOWN,
        with_reviews=True,
        **_violation_filters(filters),
    )
    candidates = selectors.review_candidate_list(
        violations=violations, per_violation=REVIEW_CANDIDATES_SHOWN
    )
    for v in violations:
        v.review_candidates = candidates.get(v.pk, [])
    return violations


def _violation_filters(filters: dict) -> dict:
    review = filters.get("review")
    return {
        "reviewed": {"reviewed": True, "unreviewed": False}.get(review),
        "severity": filters.get("severity") or None,
        "strategy_name": filters.get("strategy") or None,
        "date_from": filters.get("date_from"),
        "date_to": filters.get("date_to"),
    }


def _gauges(history: History, limits) -> dict:
    """Leverage and volatility against their portfolio limits. Volatility: the risk
    manager's stored value when it has one, else the trailing 63-day realized volatility
    of the stored daily returns (``rolling_annual_volatility``), labelled as such."""
    latest = history.latest
    leverage = float(latest["leverage"])
    vol = finite(latest["volatility"])
    vol_source = "stored by the risk manager"
    if vol is None and len(history.returns) >= VOLATILITY_WINDOW:
        rolled = rolling_annual_volatility(history.returns, VOLATILITY_WINDOW)
        vol = finite(rolled.iloc[-1])
        vol_source = f"trailing {VOLATILITY_WINDOW}-day realized (std ddof=1 x sqrt(252))"
    lev_limit = limit_threshold(limits, scope="portfolio", metric="leverage")
    vol_limit = limit_threshold(limits, scope="portfolio", metric="volatility")
    return {
        "leverage": leverage,
        "leverage_limit": lev_limit,
        "volatility": vol,
        "volatility_limit": vol_limit,
        "volatility_source": vol_source if vol is not None else "not enough history",
        "gauge_figures": {
            "leverage": charts.gauge_figure("Leverage", leverage, lev_limit, fmt=".2f"),
            "volatility": charts.gauge_figure("Volatility", vol, vol_limit, fmt=".1%"),
        },
    }


def _var(history: History) -> dict:
    latest = history.latest
    values = {f: finite(latest[f]) for f in VAR_FIELDS}
    has_history = bool(history.snapshots[list(VAR_FIELDS)].notna().any().any())
    return {
        "values": values,
        "computed": any(v is not None for v in values.values()),
        "has_history": has_history,
    }


def _open_positions(history: History) -> dict:
    """The last close's open-position figures as stored (``risk.engine.excursion``): the
    portfolio's open MAE (the worst open position of any book, not netted) and each
    book's max position weight and open MAE; None where a row predates them."""
    frame = history.strategy_snapshots
    last = frame[frame["date"] == history.snapshots.index[-1]].set_index("strategy")
    books = [
        {
            "name": name,
            "max_position_weight": finite(last.at[name, "max_position_weight"]),
            "open_mae": finite(last.at[name, "open_mae"]),
        }
        for name in history.names
        if name in last.index
    ]
    return {"open_mae": finite(history.latest["open_mae"]), "books": books}


def _correlation(history: History, limits) -> dict:
    returns = history.book_returns
    complete = returns.dropna()
    threshold = limit_threshold(limits, scope="portfolio", metric="strategy_correlation")
    if len(history.names) < 2 or len(complete) < 3:
        return {"correlation_pairs": [], "correlation_threshold": threshold}
    window = complete.iloc[-CORRELATION_WINDOW:]
    corr = correlation_matrix(window)
    pairs = []
    for i, a in enumerate(corr.columns):
        for b in corr.columns[i + 1 :]:
            value = finite(corr.loc[a, b])
            pairs.append(
                {
                    "a": a,
                    "b": b,
                    "value": value,
                    "alert": value is not None and threshold is not None and value > threshold,
                }
            )
    pairs.sort(key=lambda p: -(p["value"] if p["value"] is not None else -2))
    fig = charts.correlation_figure(corr, window, threshold, len(window))
    return {
        "correlation_pairs": pairs,
        "correlation_threshold": threshold,
        "correlation_window": len(window),
        "figures_correlation": fig,
    }


def _risk_decomposition(history: History) -> dict:
    """RC_i = w_i (S w)_i / sqrt(w'Sw) with w the strategies' latest weights (share of
    portfolio equity) and S the annualized sample covariance of their daily returns over
    the last 60 complete days: ``risk.engine.portfolio_risk``, the risk manager's maths."""
    returns = history.book_returns
    weights = history.wide("weight").iloc[-1].fillna(0.0)
    complete = returns.dropna()
    if len(complete) < 2 or len(history.names) == 0:
        return {"risk_rows": []}
    window = complete.iloc[-COVARIANCE_WINDOW:]
    risk = portfolio_risk(window, weights.reindex(window.columns), lookback_days=COVARIANCE_WINDOW)
    rc = pd.Series(risk.contributions.absolute, index=list(risk.strategies))
    rows = [
        {
            "name": name,
            "weight": float(weights[name]),
            "vol": float(risk.strategy_volatilities[i]),
            "rc": finite(rc[name]),
            "share": finite(risk.contributions.percent[i]),
        }
        for i, name in enumerate(risk.strategies)
    ]
    return {
        "risk_rows": rows,
        "risk_total": finite(risk.volatility),
        "risk_window": len(window),
        "diversification": finite(risk.diversification_ratio),
        "figures_risk": charts.risk_contribution_figure(rc.fillna(0.0)),
    }


def _concentration_figure(positions: pd.DataFrame, equity: float, limits) -> dict:
    """Top 10 tickers by |net weight|, stacked by the book that holds them (signed value /
    portfolio equity), with the per-ticker weight limit as lines at +-limit."""
    limit = limit_threshold(limits, scope="position", metric="ticker_weight")
    lines = {} if limit is None else {f"limit {limit:.0%}": limit, f"-{limit:.0%}": -limit}
    if positions.empty:
        return charts.bars_figure(pd.DataFrame(), "Position concentration (no positions)")
    weights = (
        positions.pivot_table(
            index="ticker", columns="strategy", values="value", aggfunc="sum", fill_value=0.0
        )
        / equity
    )
    top = weights.sum(axis=1).abs().sort_values(ascending=False).index[:TOP_CONCENTRATION]
    fig = charts.bars_figure(
        weights.loc[top],
        "Top 10 positions by net weight, by strategy",
        yformat=".1%",
        barmode="relative",
        hlines=lines,
    )
    fig["caption"] = "Signed position value / portfolio equity, stacked by book." + (
        "" if limit is None else " Dashed lines: the per-ticker net weight limit."
    )
    return fig


GROUP_KINDS = (("sector", "Sector"), ("asset_class", "Asset class"))


def group_exposure_rows(positions: pd.DataFrame, equity: float, limits) -> list[dict]:
    """Sector and asset-class exposure of the latest positions against their limits (the
    risk manager's measure, ``risk.engine.groups``): positions netted per ticker across
    books, then per group net ``|sum of netted values| / equity`` and gross ``sum of
    |netted value| / equity``. ``cap`` is the group's own enabled limit or else the
    default (no group) one, ``basis`` its metric's; ``over`` when the measured basis is
    above the cap. Sorted by kind, then by the larger of net and gross, descending."""
    if positions.empty or not equity > 0:
        return []
    netted = positions.groupby("ticker").agg(
        value=("value", "sum"), sector=("sector", "first"), asset_class=("asset_class", "first")
    )
    rows = []
    for scope, label in GROUP_KINDS:
        caps = [lim for lim in limits if lim.enabled and lim.scope == scope]
        kind_rows = []
        for group, part in netted.groupby(scope):
            net = abs(float(part["value"].sum())) / equity
            gross = float(part["value"].abs().sum()) / equity
            own = [lim for lim in caps if lim.group == group] or [
                lim for lim in caps if not lim.group
            ]
            limit = min(own, key=lambda lim: lim.threshold) if own else None
            basis = "gross" if limit is not None and "gross" in limit.metric else "net"
            measured = gross if basis == "gross" else net
            kind_rows.append(
                {
                    "kind": label,
                    "group": group,
                    "net": net,
                    "gross": gross,
                    "cap": None if limit is None else limit.threshold,
                    "basis": basis if limit is not None else "",
                    "over": limit is not None and measured > limit.threshold,
                }
            )
        rows += sorted(kind_rows, key=lambda r: -max(r["net"], r["gross"]))
    return rows


def parse_violation_filters(params, strategy_names: list[str]) -> dict:
    """GET params -> filters. An unknown severity or strategy is dropped, never passed to
    the query; a malformed date is a ``QueryError`` (``reporting.pages.params``)."""
    severity = params.get("severity", "")
    strategy = params.get("strategy", "")
    review = params.get("review", "")
    return {
        "review": review if review in ("reviewed", "unreviewed") else "",
        "severity": severity if severity in SEVERITIES else "",
        "strategy": strategy if strategy in strategy_names else "",
        "date_from": query_date(params, "date_from"),
        "date_to": query_date(params, "date_to"),
    }
