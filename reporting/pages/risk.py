"""Page 2, risk: gauges against the target and the limits, drawdown, VaR/CVaR with
intervals, strategy correlation, position concentration, risk decomposition and the
violation log (paginated). The risk figures are the ones the risk manager stored at the
last close, on its own window (``reporting.pages.risk_panels``)."""

from __future__ import annotations

from urllib.parse import urlencode

import pandas as pd

from portfolio.models import Portfolio
from reporting import charts, selectors
from reporting.engine.rolling import rolling_annual_volatility
from reporting.pages import risk_panels
from reporting.pages.common import (
    History,
    finite,
    history_load,
    limit_threshold,
    row_stamp,
    state_cached,
    stored_html,
)
from reporting.pages.params import MAX_PAGE, query_date, query_int
from reporting.pages.scenarios import stress_panel
from risk.engine.severity import SEVERITIES

VOLATILITY_WINDOW = 63
TOP_CONCENTRATION = 10
VIOLATIONS_PER_PAGE = 25
REVIEW_CANDIDATES_SHOWN = 30  # configuration changes a review form offers per violation
VAR_FIELDS = ("var_95", "var_99", "cvar_95", "cvar_99")
VAR_LABELS = {
    "var_95": "VaR 95%",
    "var_99": "VaR 99%",
    "cvar_95": "CVaR 95%",
    "cvar_99": "CVaR 99%",
}


def risk_page(*, portfolio: Portfolio, params) -> dict:
    """Context of the risk page (a fixed number of queries). ``params`` (request.GET):
    severity, strategy (name), review (reviewed/unreviewed), date_from, date_to filter the
    violation log, ``page`` pages it (``VIOLATIONS_PER_PAGE`` rows a page). Everything but
    the violation log (gauges, VaR, correlation, decomposition, concentration, exposures)
    is a function of the stored rows and of the configuration it shows: computed once per
    committed state (``state_cached``, stamped with the portfolio's, the strategies' and
    the limits' rows). The log, whose reviews an operator changes between updates, is read
    on every request."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    limits = selectors.risk_limit_list(portfolio=portfolio)
    filters = parse_violation_filters(params, [s.name for s in strategies])
    depends = (row_stamp(portfolio), *(row_stamp(s) for s in strategies))
    stored = state_cached(
        portfolio=portfolio,
        name="risk",
        depends=(*depends, *(row_stamp(limit) for limit in limits)),
        build=lambda: stored_html(
            _stored_context(portfolio, strategies, limits), {"top": "risk_top"}, portfolio=portfolio
        ),
    )
    context = {
        "portfolio": portfolio,
        "strategies": strategies,
        "limits": limits,
        "filters": filters,
        **stored,
    }
    context.update(_violation_page(portfolio, filters, params))
    context.update(stress_panel(portfolio=portfolio))  # read per request: runs land after
    return context


def _stored_context(portfolio: Portfolio, strategies: list, limits: list) -> dict:
    """The part of the page that is a function of the stored rows and the configuration."""
    history = history_load(portfolio=portfolio, strategies=strategies)
    context = {"as_of": history.as_of, "figures": {}}
    if history.latest is None:
        return context
    window = risk_panels.risk_window_load(portfolio=portfolio, history=history)
    positions = selectors.position_frame(portfolio=portfolio, as_of=history.as_of)
    context.update(_gauges(history, limits, risk_panels.volatility_target(portfolio)))
    context["var"] = _var(history, window)
    context["book_volatility_targets"] = risk_panels.book_volatility_targets(history)
    context["open_positions"] = _open_positions(history)
    context["figures"].update(context.pop("gauge_figures"))
    context["drawdown_reference"] = selectors.drawdown_reference(portfolio=portfolio)
    context["figures"]["drawdown"] = charts.drawdown_figure(
        history.snapshots[["drawdown"]].rename(columns={"drawdown": "Portfolio"})
    )
    if context["var"]["has_history"]:
        frame = history.snapshots[list(VAR_FIELDS)].dropna(how="all").rename(columns=VAR_LABELS)
        context["figures"]["var"] = charts.var_interval_figure(
            frame, context["var"]["rows"], context["var"]["coverage"]
        )
    context.update(risk_panels.correlation(history, window, limits))
    context.update(risk_panels.decomposition(history, window))
    for key in ("correlation", "risk"):
        fig = context.pop(f"figures_{key}", None)
        if fig is not None:
            context["figures"][key] = fig
    equity = float(history.latest["equity"])
    context["figures"]["concentration"] = _concentration_figure(positions, equity, limits)
    context["group_exposure"] = group_exposure_rows(positions, equity, limits)
    return context


def _violation_page(portfolio: Portfolio, filters: dict, params) -> dict:
    """One page of the violation log (``page`` of ``params``, clamped to the last), each
    row with ``review_candidates``: the configuration changes its review form offers
    (4 queries; 2 when no violation matches). ``page_links`` keep the filters."""
    query = _violation_filters(filters)
    total = selectors.violation_count(portfolio=portfolio, **query)
    pages = max(1, -(-total // VIOLATIONS_PER_PAGE))
    page = min(query_int(params, "page", default=1, minimum=1, maximum=MAX_PAGE), pages)
    offset = (page - 1) * VIOLATIONS_PER_PAGE
    violations = selectors.violation_list(
        portfolio=portfolio,
        limit=VIOLATIONS_PER_PAGE,
        offset=offset,
        with_reviews=True,
        **query,
    )
    candidates = selectors.review_candidate_list(
        violations=violations, per_violation=REVIEW_CANDIDATES_SHOWN
    )
    for v in violations:
        v.review_candidates = candidates.get(v.pk, [])
    kept = {k: v for k, v in params.items() if k in FILTER_KEYS and v}

    def link(n: int) -> str:
        return "?" + urlencode(kept | {"page": n}) + "#violations"

    return {
        "violations": violations,
        "violation_pages": {
            "page": page,
            "pages": pages,
            "total": total,
            "first": offset + 1 if violations else 0,
            "last": offset + len(violations),
            "previous": link(page - 1) if page > 1 else None,
            "next": link(page + 1) if page < pages else None,
            "per_page": VIOLATIONS_PER_PAGE,
        },
    }


FILTER_KEYS = ("severity", "strategy", "review", "date_from", "date_to")


def _violation_filters(filters: dict) -> dict:
    review = filters.get("review")
    return {
        "reviewed": {"reviewed": True, "unreviewed": False}.get(review),
        "severity": filters.get("severity") or None,
        "strategy_name": filters.get("strategy") or None,
        "date_from": filters.get("date_from"),
        "date_to": filters.get("date_to"),
    }


def _gauges(history: History, limits, target: float | None) -> dict:
    """Leverage against its limit; volatility against the portfolio's target and its
    limit. Volatility is the risk manager's stored ex-ante figure (``sqrt(252 w'Sw)``,
    current weights on its window of unit returns: the same number the risk
    decomposition sums to); only before it measured one, the trailing 63-day realized
    volatility of the stored daily returns (``rolling_annual_volatility``), labelled."""
    latest = history.latest
    leverage = float(latest["leverage"])
    vol = finite(latest["volatility"])
    vol_source = "ex-ante, stored by the risk manager"
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
        "volatility_target": target,
        "volatility_source": vol_source if vol is not None else "not enough history",
        "gauge_figures": {
            "leverage": charts.gauge_figure("Leverage", leverage, lev_limit, fmt=".2f"),
            "volatility": charts.volatility_gauge_figure(vol, target, vol_limit),
        },
    }


def _var(history: History, window) -> dict:
    latest = history.latest
    values = {f: finite(latest[f]) for f in VAR_FIELDS}
    has_history = bool(history.snapshots[list(VAR_FIELDS)].notna().any().any())
    return risk_panels.var_panel(history, window) | {
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
