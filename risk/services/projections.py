"""Forward-looking scenarios of a portfolio from its stored rows: the Monte Carlo
projection (``risk.engine.montecarlo``), the correlation regime check with its alert
(``risk.engine.regimes``) and the walk-forward comparison of a strategy's variants
(``risk.engine.walkforward``). Each reads the stored unit returns
(``StrategySnapshot.unit_return``: the return per unit of exposure the risk manager
measures with) or the stored closes, calls the engine and stores a ``ScenarioRun``.

Inputs of the Monte Carlo projection, all as of the last applied bar: the strategies'
joint unit returns over every stored bar, their weights ``w_i = (E_i / E) X_i`` as the
risk manager measured them at that close (``PortfolioSnapshot.risk["weights"]``), today's
equity, today's drawdown from the risk manager's peak, and the least negative enabled
portfolio drawdown limit (the one that fires first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from django.conf import settings

from portfolio import selectors
from portfolio.engine.errors import ConfigError
from portfolio.engine.signals import signal_from_config
from portfolio.models import Portfolio, PortfolioSnapshot
from risk.engine.scenario_specs import montecarlo_problems
from risk.models import RiskLimit, ScenarioRun
from risk.services.scenarios import ScenarioError, scenario_store

MIN_RETURN_ROWS = 20
HIST_BINS = 40


class ParamsError(ValueError):
    """A parameter refused before anything ran: ``field`` and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def unit_returns_frame(portfolio: Portfolio) -> pd.DataFrame:
    """Every stored bar's unit returns, dates x strategy names (position order)."""
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    dates, rows = selectors.unit_returns_tail(
        portfolio=portfolio, strategy_ids=[s.id for s in strategies], bars=10**7
    )
    return pd.DataFrame(
        rows, index=pd.DatetimeIndex(dates), columns=[s.name for s in strategies], dtype=float
    )


def _latest_snapshot(portfolio: Portfolio) -> PortfolioSnapshot:
    snap = PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("-date").first()
    if snap is None:
        raise ScenarioError(f"portfolio {portfolio.name} has no snapshot yet")
    return snap


def drawdown_limit(portfolio: Portfolio) -> float | None:
    """The least negative enabled portfolio drawdown limit (it fires first), or None."""
    limits = RiskLimit.objects.filter(
        portfolio=portfolio, enabled=True, scope="portfolio", metric="drawdown"
    ).values_list("threshold", flat=True)
    return max(limits, default=None)


def _histogram(values: np.ndarray) -> tuple[list[float], list[int]]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return [], []
    counts, edges = np.histogram(finite, bins=HIST_BINS)
    return edges.tolist(), counts.tolist()


def _mc_params(params: dict) -> dict:
    out = {
        "paths": params.get("paths", settings.QUANTSITE_MC_PATHS),
        "horizon": params.get("horizon", settings.QUANTSITE_MC_HORIZON),
        "block": params.get("block", settings.QUANTSITE_MC_BLOCK),
        "seed": params.get("seed", settings.QUANTSITE_MC_SEED),
    }
    problems = montecarlo_problems(**out)
    if problems:
        field, _, rule = problems[0].partition(": ")
        raise ParamsError(field, rule)
    return out


def montecarlo_compute(*, portfolio: Portfolio, paths: int, horizon: int, block: int, seed: int):
    """The projection (module docstring) as a JSON-ready dict."""
    from risk.engine import montecarlo

    returns = unit_returns_frame(portfolio)
    if len(returns) < MIN_RETURN_ROWS:
        raise ScenarioError(
            f"needs at least {MIN_RETURN_ROWS} bars of stored returns, has {len(returns)}"
        )
    snap = _latest_snapshot(portfolio)
    stored = (snap.risk or {}).get("weights") or {}
    weights = np.array([float(stored.get(n) or 0.0) for n in returns.columns])
    start_dd = (snap.risk or {}).get("limit_drawdown")
    start_dd = min(0.0, float(start_dd)) if start_dd is not None else min(0.0, snap.drawdown)
    limit = drawdown_limit(portfolio)
    result = montecarlo.simulate(
        returns=returns.to_numpy(),
        weights=weights,
        value0=snap.equity,
        paths=paths,
        horizon=horizon,
        mean_block=block,
        seed=seed,
        drawdown_limit=limit,
        start_drawdown=start_dd,
    )
    out = result.to_dict()
    out |= {
        "as_of": snap.date.isoformat(),
        "value0": snap.equity,
        "weights": dict(zip(returns.columns, weights.tolist(), strict=True)),
        "drawdown_limit": limit,
        "start_drawdown": start_dd,
        "return_rows": len(returns),
        "returns_from": returns.index[0].date().isoformat(),
    }
    if getattr(result, "terminal_values", None) is not None:
        out["terminal_hist"] = _histogram(np.asarray(result.terminal_values))
    if getattr(result, "max_drawdowns", None) is not None:
        out["max_drawdown_hist"] = _histogram(np.asarray(result.max_drawdowns))
    return out


def montecarlo_record(*, portfolio: Portfolio, params: dict, trigger: str) -> ScenarioRun:
    p = _mc_params(params)
    name = f"{p['paths']:,} paths x {p['horizon']} bars, block {p['block']}, seed {p['seed']}"
    return scenario_store(
        portfolio=portfolio,
        kind=ScenarioRun.Kind.MONTECARLO,
        name=name,
        params=p,
        trigger=trigger,
        compute=lambda: montecarlo_compute(portfolio=portfolio, **p),
    )


def correlation_threshold(portfolio: Portfolio) -> float:
    """The lowest enabled portfolio ``strategy_correlation`` limit (risk_limits.yaml's
    ``correlation_limits.alert_threshold`` is one), else ``QUANTSITE_REGIME_THRESHOLD``."""
    limits = RiskLimit.objects.filter(
        portfolio=portfolio, enabled=True, scope="portfolio", metric="strategy_correlation"
    ).values_list("threshold", flat=True)
    return min(limits, default=settings.QUANTSITE_REGIME_THRESHOLD)


def regime_compute(*, portfolio: Portfolio, window: int) -> dict:
    """The regime check at the last applied bar, with the events to alert on: a shift or
    a crossing of the threshold that the previous stored check did not already report."""
    from risk.engine.regimes import regime_check

    returns = unit_returns_frame(portfolio)
    threshold = correlation_threshold(portfolio)
    try:
        check = regime_check(
            returns=returns,
            window=window,
            alpha=settings.QUANTSITE_REGIME_ALPHA,
            threshold=threshold,
        )
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    out = check.to_dict()
    previous = (
        ScenarioRun.objects.filter(
            portfolio=portfolio, kind=ScenarioRun.Kind.REGIME, status=ScenarioRun.Status.SUCCESS
        )
        .order_by("-created_at", "-id")
        .values_list("result", flat=True)
        .first()
    ) or {}
    was = {"shift": bool(previous.get("shift")), "threshold": bool(previous.get("above_threshold"))}
    out["alerts"] = [e for e in out["events"] if not was.get(e["kind"])]
    return out


def regime_record(*, portfolio: Portfolio, params: dict, trigger: str) -> ScenarioRun:
    from risk.alerts.outbox import alerts_enqueue_notice

    window = params.get("window") or settings.QUANTSITE_REGIME_WINDOW
    if isinstance(window, bool) or not isinstance(window, int) or not 3 <= window <= 2520:
        raise ParamsError(
            "window", f"must be a whole number of bars from 3 to 2,520, got {window!r}"
        )
    run = scenario_store(
        portfolio=portfolio,
        kind=ScenarioRun.Kind.REGIME,
        name=f"{window}-bar windows",
        params={"window": window},
        trigger=trigger,
        compute=lambda: regime_compute(portfolio=portfolio, window=window),
    )
    if run.status == ScenarioRun.Status.SUCCESS and not portfolio.is_backtest:
        for event in run.result.get("alerts", []):
            alerts_enqueue_notice(
                portfolio=portfolio,
                title="Correlation regime",
                severity="medium",
                note=event["message"],
                day=portfolio.last_applied_date,
                value=run.result.get("recent_average"),
                threshold=run.result.get("threshold"),
            )
    return run


KINDS = {
    ScenarioRun.Kind.MONTECARLO: montecarlo_record,
    ScenarioRun.Kind.REGIME: regime_record,
}
SCHEDULED = (ScenarioRun.Kind.MONTECARLO, ScenarioRun.Kind.REGIME)


def _walkforward_params(portfolio: Portfolio, params: dict) -> dict:
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    name = params.get("strategy") or next((s.name for s in strategies), "")
    strategy = next((s for s in strategies if s.name == name), None)
    if strategy is None:
        known = ", ".join(s.name for s in strategies) or "none"
        raise ParamsError("strategy", f"no strategy {name!r} in {portfolio.name} (known: {known})")
    default = "lookback" if "momentum" in strategy.signal_type.lower() else "window"
    parameter = params.get("parameter") or default
    raw = params.get("lookbacks") or "60,120,200"
    values = raw if isinstance(raw, list) else str(raw).replace(" ", "").split(",")
    try:
        values = [int(v) for v in values if str(v)]
    except ValueError:
        raise ParamsError("lookbacks", f"{raw!r} is not a list of whole numbers") from None
    if not 2 <= len(values) <= 10 or len(set(values)) != len(values) or min(values) < 1:
        raise ParamsError("lookbacks", "give 2 to 10 different whole numbers >= 1, e.g. 60,120,200")
    try:
        signal_from_config(strategy.signal_type, {**strategy.parameters, parameter: values[0]})
    except ConfigError as exc:
        raise ParamsError("parameter", f"{parameter!r} for {strategy.name}: {exc}") from None
    out = {
        "strategy": strategy.name,
        "parameter": parameter,
        "lookbacks": values,
        "in_sample": params.get("in_sample", 504),
        "out_of_sample": params.get("out_of_sample", 126),
    }
    for field, low in (("in_sample", 20), ("out_of_sample", 5)):
        v = out[field]
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= 10_000:
            raise ParamsError(field, f"must be a whole number of bars from {low} to 10,000")
    return out


def walkforward_compute(*, portfolio: Portfolio, p: dict) -> dict:
    """Variants of one strategy through the engine on the stored closes, and the
    walk-forward over their returns from the first bar every variant can trade (past the
    longest lookback's warm-up)."""
    from portfolio.services.books import strategy_execution
    from risk.engine.walkforward import variant_returns, walk_forward

    strategy = portfolio.strategies.get(name=p["strategy"])
    closes = selectors.price_frame(end=portfolio.last_applied_date)
    tradable = [t for t in selectors.tradable_tickers() if t in closes.columns]
    closes = closes[tradable]
    closes = closes[closes.notna().any(axis=1)]
    variants = [{p["parameter"]: v} for v in p["lookbacks"]]
    try:
        returns = variant_returns(
            closes=closes,
            signal_type=strategy.signal_type,
            base_parameters=strategy.parameters,
            variants=variants,
            capital=float(portfolio.initial_capital),
            execution=strategy_execution(portfolio, strategy),
            risk_config=strategy.risk_config,
            multipliers=selectors.multipliers(),
        )
        returns = returns.iloc[max(p["lookbacks"]) + 1 :]
        result = walk_forward(
            returns=returns, in_sample=p["in_sample"], out_of_sample=p["out_of_sample"]
        )
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None
    out = result.to_dict()
    growth = (1.0 + returns).cumprod()
    dates = [d.date().isoformat() for d in pd.DatetimeIndex(returns.index)]
    out["equity"] = {
        label: dict(zip(dates, growth[label].tolist(), strict=True)) for label in growth.columns
    }
    oos = out["oos"]
    if oos["dates"]:
        # the stitched curve starts where the first fold's out-of-sample does: from the
        # growth its first chosen variant had reached the bar before, so that variant's
        # curve and the walk-forward's coincide until the first switch
        first = dates.index(oos["dates"][0])
        chosen = oos["chosen"][0]
        base = 1.0 if first == 0 else float(growth[chosen].iloc[first - 1])
        out["equity"]["walk-forward"] = {
            d: base * e for d, e in zip(oos["dates"], oos["equity"], strict=True)
        }
    out["table"] = [*out["variants"], out["walk_forward"]]
    for fold in out["folds"]:
        fold["is_score"] = fold["in_sample_scores"].get(fold["chosen"])
    out["strategy"], out["parameter"] = p["strategy"], p["parameter"]
    return out


def walkforward_record(*, portfolio: Portfolio, params: dict, trigger: str) -> ScenarioRun:
    p = _walkforward_params(portfolio, params)
    name = (
        f"{p['strategy']}: {p['parameter']} {'/'.join(map(str, p['lookbacks']))}, "
        f"{p['in_sample']}/{p['out_of_sample']} bars"
    )
    return scenario_store(
        portfolio=portfolio,
        kind=ScenarioRun.Kind.WALKFORWARD,
        name=name,
        params=p,
        trigger=trigger,
        compute=lambda: walkforward_compute(portfolio=portfolio, p=p),
    )


KINDS[ScenarioRun.Kind.WALKFORWARD] = walkforward_record
SCHEDULED = (*SCHEDULED, ScenarioRun.Kind.WALKFORWARD)
