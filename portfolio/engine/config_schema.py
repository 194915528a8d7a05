"""Validation of ``strategy_allocation.yaml`` (already parsed to a dict) into frozen specs.

Every rule failure raises ``ConfigError`` whose ``where`` is ``<file>: <dotted.path>`` (the
key, e.g. ``strategies[1].parameters.lookbak``) and whose ``rule`` says what is allowed.

Schema (keys not listed are refused, so a typo never passes silently)::

    portfolio:
      name: str                      required
      initial_capital: number > 0    required
      leverage_target: number > 0    default 1; allocations must sum to it
      allocation_method: static      (other methods arrive with the allocation issue)
      allocation_params: mapping
      commission_bps, slippage_bps: number >= 0      default 0
      whole_shares: bool             default false (fractional quantities)
      trade_band: 0 <= number < 1    default 0
      rebalancing:
        method: periodic | threshold | manual        (the trigger)
        frequency: daily | weekly | monthly | quarterly
        threshold: 0 < number < 1
    strategies:                      non-empty list
      - name: str (unique)   allocation: number >= 0   signal_type: registered name
        parameters: mapping (checked by the signal)    risk_config: mapping
        status: active | paused     commission_bps, slippage_bps, trade_band: overrides
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from portfolio.engine.book import Execution
from portfolio.engine.calendar import FREQUENCIES
from portfolio.engine.checks import ConfigChecker
from portfolio.engine.signals import Signal, signal_from_config
from portfolio.engine.sizing import RiskConfig, risk_config_from_dict

ALLOCATION_TOLERANCE = 1e-9
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


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
_REBALANCING = {"method", "frequency", "threshold"}
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
}
ALLOCATION_METHODS = ("static",)


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
    total = math.fsum(s.allocation for s in strategies)
    if abs(total - leverage) > ALLOCATION_TOLERANCE:
        raise c.fail(
            "strategies[*].allocation",
            f"allocations sum to {total:.6g}; they must sum to 1.0 (100%) or to "
            f"portfolio.leverage_target ({leverage:g})",
        )
    for i, s in enumerate(strategies):
        if s.allocation > leverage:
            raise c.fail(f"strategies[{i}].allocation", f"must be <= leverage_target {leverage:g}")
    return PortfolioSpec(
        name=c.text(p, "name", "portfolio"),
        initial_capital=c.number(p, "initial_capital", "portfolio", minimum=0, exclusive_min=True),
        leverage_target=leverage,
        allocation_method=c.choice(
            p, "allocation_method", "portfolio", ALLOCATION_METHODS, default="static"
        ),
        allocation_params=c.mapping(
            p.get("allocation_params"),
            "portfolio.allocation_params",
            set(p.get("allocation_params") or {}),
        ),
        commission_bps=c.number(p, "commission_bps", "portfolio", default=0.0, minimum=0),
        slippage_bps=c.number(p, "slippage_bps", "portfolio", default=0.0, minimum=0),
        whole_shares=c.boolean(p, "whole_shares", "portfolio", False),
        trade_band=c.number(
            p, "trade_band", "portfolio", default=0.0, minimum=0, maximum=1, exclusive_max=True
        ),
        rebalance_trigger=c.choice(
            reb,
            "method",
            "portfolio.rebalancing",
            ("periodic", "threshold", "manual"),
            default="periodic",
        ),
        rebalance_frequency=c.choice(
            reb, "frequency", "portfolio.rebalancing", FREQUENCIES, default="monthly"
        ),
        rebalance_threshold=c.number(
            reb,
            "threshold",
            "portfolio.rebalancing",
            default=0.05,
            minimum=0,
            exclusive_min=True,
            maximum=1,
            exclusive_max=True,
        ),
        strategies=strategies,
    )


def _parse_strategy(c: ConfigChecker, row: Any, i: int) -> StrategySpec:
    path = f"strategies[{i}]"
    d = c.mapping(row, path, _STRATEGY)
    name = c.text(d, "name", path)
    if not _NAME.match(name):
        raise c.fail(f"{path}.name", "use letters, digits, '_', '-' or '.' (at most 100)")
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
    )
