"""Validation of ``strategy_allocation.yaml`` (already parsed to a dict) into frozen specs.

Every rule failure raises ``ConfigError`` whose ``where`` is ``<file>: <dotted.path>`` (the
key, e.g. ``strategies[1].parameters.lookbak``) and whose ``rule`` says what is allowed.

Schema (keys not listed are refused, so a typo never passes silently)::

    portfolio:
      name: str                      required
      initial_capital: number > 0    required
      leverage_target: number > 0    default 1; allocations must sum to it
      allocation_method: static | inverse_volatility | risk_parity | performance | kelly
                         | hierarchical_risk_budget                      default static
      allocation_params: mapping, keys by method (``parse_allocation_params``)
      commission_bps, slippage_bps: number >= 0      default 0
      whole_shares: bool             default false (fractional quantities)
      trade_band: 0 <= number < 1    default 0
      rebalancing:
        method: periodic | threshold | manual        (the trigger; manual requests
                                                      are honoured under every trigger)
        frequency: daily | weekly | monthly | quarterly
        trading_day: integer >= 1    the Nth bar of each period (1; weekly <= 3,
                                     monthly <= 15, quarterly <= 40, daily 1)
        threshold: 0 < number < 1    absolute drift of a book's share from its target
        execution: cash | proportional | liquidate   how capital moves (default cash)
    strategies:                      non-empty list
      - name: str (unique)   allocation: number >= 0   signal_type: registered name
        parameters: mapping (checked by the signal)    risk_config: mapping
        status: active | paused     commission_bps, slippage_bps, trade_band: overrides
        approval_required: bool     default false (trade approval: the signal's orders
                                    wait for a staff approval until the next bar)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from portfolio.engine.allocation import LINKAGES, METHODS, AllocationParams
from portfolio.engine.book import Execution
from portfolio.engine.calendar import FREQUENCIES
from portfolio.engine.checks import ConfigChecker
from portfolio.engine.names import STRATEGY_NAME, STRATEGY_NAME_RULE
from portfolio.engine.signals import Signal, signal_from_config
from portfolio.engine.sizing import RiskConfig, risk_config_from_dict
from portfolio.engine.state import EXECUTIONS

ALLOCATION_TOLERANCE = 1e-9
_NAME = STRATEGY_NAME  # the rule for a strategy name, wherever it is given (engine/names)


@dataclass(frozen=True)
class StrategySpec:
    name: str
    allocation: float
    signal_type: str
    parameters: dict
    risk_config: dict
    status: str
    commission_bps: float | None
    slippage_bps: float | None
    trade_band: float | None
    signal: Signal
    risk: RiskConfig
    approval_required: bool = False


@dataclass(frozen=True)
class PortfolioSpec:
    name: str
    initial_capital: float
    leverage_target: float
    allocation_method: str
    allocation_params: dict
    commission_bps: float
    slippage_bps: float
    whole_shares: bool
    trade_band: float
    rebalance_trigger: str
    rebalance_frequency: str
    rebalance_threshold: float
    strategies: tuple[StrategySpec, ...]
    rebalance_execution: str = "cash"
    rebalance_trading_day: int = 1
    allocation: AllocationParams = AllocationParams()

    def execution_for(self, s: StrategySpec) -> Execution:
        return Execution(
            commission_bps=self.commission_bps if s.commission_bps is None else s.commission_bps,
            slippage_bps=self.slippage_bps if s.slippage_bps is None else s.slippage_bps,
            whole_shares=self.whole_shares,
            trade_band=self.trade_band if s.trade_band is None else s.trade_band,
        )


_TOP = {"portfolio", "strategies"}
_PORTFOLIO = {
    "name",
    "initial_capital",
    "leverage_target",
    "allocation_method",
    "allocation_params",
    "commission_bps",
    "slippage_bps",
    "whole_shares",
    "trade_band",
    "rebalancing",
}
_REBALANCING = {"method", "frequency", "threshold", "trading_day", "execution"}
_TRADING_DAY_MAX = {"daily": 1, "weekly": 3, "monthly": 15, "quarterly": 40}
_STRATEGY = {
    "name",
    "allocation",
    "signal_type",
    "parameters",
    "risk_config",
    "status",
    "commission_bps",
    "slippage_bps",
    "trade_band",
    "approval_required",
}
ALLOCATION_METHODS = METHODS
_WINDOW = {"lookback", "min_history"}
ALLOCATION_KEYS = {
    "static": set(),
    "inverse_volatility": _WINDOW,
    "risk_parity": _WINDOW | {"risk_budgets"},
    "performance": _WINDOW | {"metric", "risk_free", "min_weight", "max_weight"},
    "kelly": _WINDOW | {"fraction", "max_leverage", "long_only"},
    "hierarchical_risk_budget": _WINDOW | {"vol_target", "max_leverage", "linkage"},
}


def parse_allocation_config(data: Any, *, source: str) -> PortfolioSpec:
    """Validate a parsed strategy_allocation.yaml; return the spec or raise ConfigError."""
    c = ConfigChecker(source)
    top = c.mapping(data, "", _TOP)
    p = c.mapping(top.get("portfolio"), "portfolio", _PORTFOLIO)
    if not p:
        raise c.fail("portfolio", "is required")
    reb = c.mapping(p.get("rebalancing"), "portfolio.rebalancing", _REBALANCING)
    leverage = c.number(
        p, "leverage_target", "portfolio", default=1.0, minimum=0, exclusive_min=True
    )
    rows = top.get("strategies")
    if not isinstance(rows, list) or not rows:
        raise c.fail("strategies", "must be a non-empty list of strategies")
    strategies = tuple(_parse_strategy(c, row, i) for i, row in enumerate(rows))
    names = [s.name for s in strategies]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise c.fail(f"strategies[{i}].name", f"duplicate strategy name {name!r}")
    wrong_sum = allocation_sum_error([s.allocation for s in strategies], leverage)
    if wrong_sum:
        raise c.fail("strategies[*].allocation", wrong_sum)
    for i, s in enumerate(strategies):
        if s.allocation > leverage:
            raise c.fail(f"strategies[{i}].allocation", f"must be <= leverage_target {leverage:g}")
    method = c.choice(p, "allocation_method", "portfolio", ALLOCATION_METHODS, default="static")
    return PortfolioSpec(
        name=c.text(p, "name", "portfolio"),
        initial_capital=c.number(p, "initial_capital", "portfolio", minimum=0, exclusive_min=True),
        leverage_target=leverage,
        allocation_method=method,
        allocation_params=dict(p.get("allocation_params") or {}),
        allocation=parse_allocation_params(
            c, method, p.get("allocation_params"), names, leverage, "portfolio.allocation_params"
        ),
        commission_bps=c.number(p, "commission_bps", "portfolio", default=0.0, minimum=0),
        slippage_bps=c.number(p, "slippage_bps", "portfolio", default=0.0, minimum=0),
        whole_shares=c.boolean(p, "whole_shares", "portfolio", False),
        trade_band=c.number(
            p, "trade_band", "portfolio", default=0.0, minimum=0, maximum=1, exclusive_max=True
        ),
        **rebalancing_from_config(c, reb),
        strategies=strategies,
    )


def rebalancing_from_config(c: ConfigChecker, reb: dict) -> dict[str, Any]:
    """The rebalancing rule's Portfolio fields from the YAML's ``portfolio.rebalancing``
    mapping (or an operator's edit of it), each checked by the YAML's rules."""
    frequency = c.choice(reb, "frequency", "portfolio.rebalancing", FREQUENCIES, default="monthly")
    return {
        "rebalance_trigger": c.choice(
            reb,
            "method",
            "portfolio.rebalancing",
            ("periodic", "threshold", "manual"),
            default="periodic",
        ),
        "rebalance_frequency": frequency,
        "rebalance_threshold": c.number(
            reb,
            "threshold",
            "portfolio.rebalancing",
            default=0.05,
            minimum=0,
            exclusive_min=True,
            maximum=1,
            exclusive_max=True,
        ),
        "rebalance_execution": c.choice(
            reb, "execution", "portfolio.rebalancing", EXECUTIONS, default="cash"
        ),
        "rebalance_trading_day": c.integer(
            reb,
            "trading_day",
            "portfolio.rebalancing",
            default=1,
            minimum=1,
            maximum=_TRADING_DAY_MAX[frequency],
        ),
    }


def allocation_sum_error(
    allocations: list[float], leverage: float, tolerance: float = ALLOCATION_TOLERANCE
) -> str | None:
    """Why the static allocations are refused (None when they sum to the leverage target,
    1.0 meaning 100%). The YAML and the admin both apply it."""
    total = math.fsum(allocations)
    if abs(total - leverage) <= tolerance:
        return None
    return (
        f"allocations sum to {total:.6g}; they must sum to 1.0 (100%) or to "
        f"portfolio.leverage_target ({leverage:g})"
    )


def parse_allocation_params(
    c: ConfigChecker,
    method: str,
    raw: Any,
    names: list[str],
    leverage: float,
    path: str = "allocation_params",
) -> AllocationParams:
    """Validate one method's parameters (unknown keys refused; the admin uses this too)."""
    if method not in ALLOCATION_KEYS:
        raise c.fail(
            "allocation_method", f"must be one of {', '.join(ALLOCATION_METHODS)}, got {method!r}"
        )
    d = c.mapping(raw, path, ALLOCATION_KEYS[method])
    lookback = c.integer(d, "lookback", path, default=63, minimum=2, maximum=5000)
    values: dict[str, Any] = {
        "method": method,
        "lookback": lookback,
        "min_history": c.integer(d, "min_history", path, default=lookback, minimum=2),
    }
    if "risk_budgets" in d:
        values["risk_budgets"] = _risk_budgets(c, d["risk_budgets"], names, f"{path}.risk_budgets")
    if method == "performance":
        values["metric"] = c.choice(d, "metric", path, ("sharpe", "sortino"), default="sharpe")
        values["risk_free"] = c.number(d, "risk_free", path, default=0.0, minimum=-1, maximum=1)
        lo = c.number(d, "min_weight", path, default=0.0, minimum=0, maximum=1)
        hi = c.number(d, "max_weight", path, default=1.0, minimum=0, exclusive_min=True, maximum=1)
        if lo > hi:
            raise c.fail(f"{path}.min_weight", f"the floor {lo:g} is above the cap {hi:g}")
        if len(names) * lo > 1 + 1e-12:
            raise c.fail(
                f"{path}.min_weight",
                f"{len(names)} strategies x floor {lo:g} exceeds 100%",
            )
        if len(names) * hi < 1 - 1e-12:
            raise c.fail(
                f"{path}.max_weight", f"{len(names)} strategies x cap {hi:g} is below 100%"
            )
        values["min_weight"], values["max_weight"] = lo, hi
    if method in ("kelly", "hierarchical_risk_budget") and "max_leverage" in d:
        values["max_leverage"] = c.number(d, "max_leverage", path, minimum=0, exclusive_min=True)
    if method == "kelly":
        values["fraction"] = c.number(
            d, "fraction", path, default=0.5, minimum=0, exclusive_min=True, maximum=1
        )
        if not c.boolean(d, "long_only", path, True):
            raise c.fail(
                f"{path}.long_only",
                "must be true: a strategy book cannot hold negative capital, so a short "
                "allocation to a strategy is not supported",
            )
    if method == "hierarchical_risk_budget":
        if d.get("vol_target") is not None:
            values["vol_target"] = c.number(
                d, "vol_target", path, minimum=0, exclusive_min=True, maximum=5
            )
        values["linkage"] = c.choice(d, "linkage", path, LINKAGES, default="single")
    return AllocationParams(**values)


def _risk_budgets(c: ConfigChecker, raw: Any, names: list[str], path: str):
    if not isinstance(raw, dict) or not raw:
        raise c.fail(path, "must be a mapping of strategy name to a positive budget")
    for key in raw:
        if key not in names:
            raise c.fail(f"{path}.{key}", f"unknown strategy; strategies: {', '.join(names)}")
    missing = [n for n in names if n not in raw]
    if missing:
        raise c.fail(path, f"needs a budget for every strategy; missing: {', '.join(missing)}")
    budgets = {n: c.number(raw, n, path, minimum=0, exclusive_min=True) for n in names}
    total = math.fsum(budgets.values())
    return tuple((n, budgets[n] / total) for n in names)


def _parse_strategy(c: ConfigChecker, row: Any, i: int) -> StrategySpec:
    path = f"strategies[{i}]"
    d = c.mapping(row, path, _STRATEGY)
    name = c.text(d, "name", path)
    if not _NAME.match(name):
        raise c.fail(f"{path}.name", STRATEGY_NAME_RULE)
    signal_type = d.get("signal_type")
    params = c.mapping(d.get("parameters"), f"{path}.parameters", set(d.get("parameters") or {}))
    signal = signal_from_config(signal_type, params, where=f"{c.source}: {path}")
    risk_raw = d.get("risk_config") or {}
    risk = risk_config_from_dict(risk_raw, where=f"{c.source}: {path}.risk_config")

    def optional(key: str, **bounds) -> float | None:
        return None if d.get(key) is None else c.number(d, key, path, **bounds)

    return StrategySpec(
        name=name,
        allocation=c.number(d, "allocation", path, minimum=0),
        signal_type=signal_type,
        parameters=dict(params),
        risk_config=dict(risk_raw),
        status=c.choice(d, "status", path, ("active", "paused"), default="active"),
        commission_bps=optional("commission_bps", minimum=0),
        slippage_bps=optional("slippage_bps", minimum=0),
        trade_band=optional("trade_band", minimum=0, maximum=1, exclusive_max=True),
        signal=signal,
        risk=risk,
        approval_required=c.boolean(d, "approval_required", path, False),
    )
