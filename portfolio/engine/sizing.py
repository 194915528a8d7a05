"""Position sizing: a signal's raw target weights under one strategy's risk config.

Shapes and units. ``raw`` and ``closes`` are frames with the same ascending date index and
the same ticker columns; ``raw`` holds signed weights as fractions of the strategy's equity
(row t decided at close t), ``closes`` the daily closes (NaN where missing). Volatility is
annualized with sqrt(252) from daily simple returns and the sample std (ddof=1).
``size_targets`` returns sized weights of the same shape; row t uses data through t only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from portfolio.engine.errors import ConfigError

TRADING_DAYS = 252
# Below this annualized vol the held portfolio is treated as riskless: scaling toward a
# target by dividing by floating-point noise would be meaningless.
ZERO_VOL = 1e-12


@dataclass(frozen=True)
class StopLoss:
    """A per-position stop-loss (checked by the risk manager, ``risk.engine.stops``).

    level: fraction in (0, 1): a long stops at ``ref * (1 - level)``, a short at
    ``ref * (1 + level)``, ``ref`` the book's average entry price (``Holding.avg_price``),
    or with ``trailing`` the best close since entry (a long's highest, a short's lowest).
    cooloff_bars: bars after the stop during which the strategy may not re-enter the ticker.
    """

    level: float
    trailing: bool = False
    cooloff_bars: int = 0


@dataclass(frozen=True)
class RiskConfig:
    """Per-strategy sizing rules (None switches a rule off).

    max_position_size: cap on |weight| of any one ticker, fraction of strategy equity.
    max_leverage: cap on gross exposure sum|w|.
    volatility_target: annualized vol the held portfolio is scaled toward.
    vol_lookback: daily returns used to estimate that vol (>= 2).
    stop_loss: per-position stop (``StopLoss``; not a sizing rule: the risk manager applies
    it at each close). YAML: ``stop_loss: 0.08`` or ``stop_loss: {level: 0.08, trailing:
    true, cooloff_bars: 5}``.
    """

    max_position_size: float | None = None
    max_leverage: float | None = None
    volatility_target: float | None = None
    vol_lookback: int = 60
    stop_loss: StopLoss | None = None


def risk_config_from_dict(
    d: Mapping[str, Any] | None, *, where: str = "strategy.risk_config"
) -> RiskConfig:
    """A ``RiskConfig`` from a parsed mapping (None = no rules). Raises ``ConfigError`` at
    ``{where}.<key>`` for an unknown key, a wrong type (bool is not a number) or a value
    that is not positive."""
    if d is None:
        return RiskConfig()
    if not isinstance(d, Mapping):
        raise ConfigError(where, f"must be a mapping, got {d!r}")
    allowed = [f.name for f in fields(RiskConfig)]
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
    values: dict[str, Any] = {}
    for key in ("max_position_size", "max_leverage", "volatility_target"):
        value = d.get(key)
        if value is None:
            continue
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{where}.{key}", f"must be a positive number or null, got {value!r}")
        values[key] = float(value)
    if "vol_lookback" in d:
        value = d["vol_lookback"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ConfigError(f"{where}.vol_lookback", f"must be an integer >= 2, got {value!r}")
        values["vol_lookback"] = value
    if d.get("stop_loss") is not None:
        values["stop_loss"] = stop_loss_from_value(d["stop_loss"], where=f"{where}.stop_loss")
    return RiskConfig(**values)


def stop_loss_from_value(value: Any, *, where: str) -> StopLoss:
    """A ``StopLoss`` from ``0.08`` or ``{level: 0.08, trailing: bool, cooloff_bars: int}``
    (``level`` required). Raises ``ConfigError`` at ``{where}[.key]`` for anything else."""
    if not isinstance(value, Mapping):
        return StopLoss(level=_stop_level(value, where))
    allowed = [f.name for f in fields(StopLoss)]
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
    if "level" not in value:
        raise ConfigError(f"{where}.level", "is required (a fraction in (0, 1))")
    trailing = value.get("trailing", False)
    if not isinstance(trailing, bool):
        raise ConfigError(f"{where}.trailing", f"must be true or false, got {trailing!r}")
    cooloff = value.get("cooloff_bars", 0)
    if not isinstance(cooloff, int) or isinstance(cooloff, bool) or cooloff < 0:
        raise ConfigError(f"{where}.cooloff_bars", f"must be an integer >= 0, got {cooloff!r}")
    return StopLoss(_stop_level(value["level"], f"{where}.level"), trailing, cooloff)


def _stop_level(value: Any, where: str) -> float:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or not 0 < value < 1:
        raise ConfigError(where, f"must be a fraction in (0, 1), got {value!r}")
    return float(value)


def size_targets(raw: pd.DataFrame, closes: pd.DataFrame, risk: RiskConfig) -> pd.DataFrame:
    """Apply ``risk`` to each row t of ``raw``, in this order:

    1. Volatility target (if set): sigma_t = sqrt(252) * std_ddof1(R_window @ w_t), the
       trailing vol of the portfolio holding row t's raw weights fixed over the last
       ``vol_lookback`` daily returns (rows t-vol_lookback+1 .. t, r_s = c_s / c_{s-1} - 1,
       NaN returns as 0). w_t *= volatility_target / sigma_t. Where sigma_t cannot be
       computed (t < vol_lookback: not enough returns) or is 0 (below ``ZERO_VOL``), the
       row is held unscaled.
    2. Position cap: each w clipped to [-max_position_size, max_position_size]; the excess
       stays in cash (no redistribution).
    3. Leverage cap: if sum|w| > max_leverage the row is scaled down to exactly
       max_leverage.

    The vol target comes first so the caps bind on what is actually held: a scale-up can
    never lift a position over its cap or the book over its leverage limit.
    """
    return sizing_stages(raw, closes, risk).sized


@dataclass(frozen=True)
class SizingStages:
    """Each step of ``size_targets`` for every row: ``raw`` the signal's weights;
    ``vol_scale`` (n,) the volatility target's factor (1 where unset or not computable)
    and ``sigma`` (n,) the trailing vol it divided by (NaN where none); ``scaled`` raw x
    vol_scale; ``capped`` after the position cap; ``leverage_scale`` (n,) the leverage
    cap's factor (1 where it does not bind); ``sized`` the final weights. Frames share
    ``raw``'s index and columns."""

    raw: pd.DataFrame
    sigma: pd.Series
    vol_scale: pd.Series
    scaled: pd.DataFrame
    capped: pd.DataFrame
    leverage_scale: pd.Series
    sized: pd.DataFrame


def sizing_stages(raw: pd.DataFrame, closes: pd.DataFrame, risk: RiskConfig) -> SizingStages:
    """``size_targets`` step by step (its docstring gives the rules): the one
    implementation, so what a page explains is what the update path traded."""
    if not raw.index.equals(closes.index) or not raw.columns.equals(closes.columns):
        raise ValueError("size_targets: raw and closes must have the same index and columns")
    w = raw.to_numpy(dtype=float, copy=True)
    n = len(w)
    sigma, scale = np.full(n, np.nan), np.ones(n)
    if risk.volatility_target is not None:
        sigma = trailing_portfolio_vol(w, closes.to_numpy(dtype=float), risk.vol_lookback)
        usable = np.isfinite(sigma) & (sigma > ZERO_VOL)
        scale[usable] = risk.volatility_target / sigma[usable]
        w *= scale[:, None]
    scaled = w.copy()
    if risk.max_position_size is not None:
        np.clip(w, -risk.max_position_size, risk.max_position_size, out=w)
    capped = w.copy()
    lev = np.ones(n)
    if risk.max_leverage is not None:
        gross = np.abs(w).sum(axis=1)
        over = gross > risk.max_leverage
        lev[over] = risk.max_leverage / gross[over]
        w[over] *= lev[over][:, None]
    idx, cols = raw.index, raw.columns
    return SizingStages(
        raw=raw,
        sigma=pd.Series(sigma, index=idx),
        vol_scale=pd.Series(scale, index=idx),
        scaled=pd.DataFrame(scaled, index=idx, columns=cols),
        capped=pd.DataFrame(capped, index=idx, columns=cols),
        leverage_scale=pd.Series(lev, index=idx),
        sized=pd.DataFrame(w, index=idx, columns=cols),
    )


def trailing_portfolio_vol(weights: np.ndarray, closes: np.ndarray, lookback: int) -> np.ndarray:
    """sigma_t = sqrt(252) * std_ddof1 of (R[t-lookback+1 .. t] @ weights[t]), the daily
    simple returns R (NaN as 0) of the portfolio holding row t's weights over the last
    ``lookback`` returns. NaN where t < lookback (row 0 has no return) and on all-zero
    rows, which are skipped. Shapes (n, k), (n, k) -> (n,)."""
    n, _ = weights.shape
    sigma = np.full(n, np.nan)
    rows = np.flatnonzero(np.any(weights != 0, axis=1))
    rows = rows[rows >= lookback]
    if rows.size == 0:
        return sigma
    returns = np.zeros_like(closes, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        returns[1:] = closes[1:] / closes[:-1] - 1.0
    returns[~np.isfinite(returns)] = 0.0
    held = weights[rows]
    # One pass per lag, each vectorized over every row: O(lookback) numpy calls in all.
    port = np.empty((rows.size, lookback))
    for lag in range(lookback):
        port[:, lag] = np.einsum("ij,ij->i", returns[rows - lag], held)
    sigma[rows] = math.sqrt(TRADING_DAYS) * port.std(axis=1, ddof=1)
    return sigma
