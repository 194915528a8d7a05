"""Trading signals: wide closes in, target weights out.

Shapes and units. ``closes`` is a frame indexed by ascending bar dates with one float
column per ticker (NaN where a ticker has no price: not listed yet, or missing).
``Signal.targets(closes)`` returns a frame with the same index and columns: the signed
target weight of each ticker as a fraction of the strategy's equity (negative = short),
decided at the close of that row's date. Every signal is strictly causal: row t is computed
from rows 0..t only, so ``targets(closes.iloc[:t + 1]).iloc[-1]`` equals
``targets(closes).iloc[t]`` exactly (all rolling statistics run forward). The output never
holds NaN: 0.0 where nothing is held, on a date whose close is NaN, and on every row before
the signal has enough history (``warmup_bars``), so the strategy holds cash there.

Signals are registered by name in ``SIGNALS`` and built from configuration by
``signal_from_config``, which refuses unknown names, unknown or mistyped parameters and
out-of-range values with a ``ConfigError`` naming the field.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from portfolio.engine.calendar import FREQUENCIES
from portfolio.engine.errors import ConfigError

FLAT, LONG, SHORT = 0, 1, 2
_SIGN_OF_STATE = np.array([0.0, 1.0, -1.0])


# --- parameter checks --------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    # bool is a subclass of int: `lookback: true` must not pass as 1.
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _check_int(at: str, key: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not _is_int(value) or value < minimum:
        wanted = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        if optional:
            wanted += " or null"
        raise ConfigError(f"{at}.{key}", f"must be {wanted}, got {value!r}")


def _check_number(at: str, key: str, value: Any) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if not ok or not math.isfinite(value):
        raise ConfigError(f"{at}.{key}", f"must be a number, got {value!r}")
    return float(value)


def _check_flag(at: str, key: str, value: Any) -> None:
    if not isinstance(value, bool | np.bool_):
        raise ConfigError(f"{at}.{key}", f"must be true or false, got {value!r}")


def _check_frequency(at: str, value: Any) -> None:
    if value not in FREQUENCIES:
        raise ConfigError(
            f"{at}.frequency", f"must be one of {', '.join(FREQUENCIES)}, got {value!r}"
        )


# --- shared array helpers ----------------------------------------------------------------


def _sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average of the last ``window`` rows including t; NaN unless all
    ``window`` values are present."""
    return pd.DataFrame(values).rolling(window, min_periods=window).mean().to_numpy()


def _spread(sign: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``sign / count`` row by row, 0 where ``count`` is 0."""
    return sign / np.maximum(count, 1)[:, None]


def _checked_values(closes: pd.DataFrame) -> np.ndarray:
    if not closes.index.is_monotonic_increasing or not closes.index.is_unique:
        raise ValueError("closes: the index must be unique bar dates in ascending order")
    return closes.to_numpy(dtype=float)


# --- the signal base ---------------------------------------------------------------------


class Signal:
    """A named signal with validated frozen parameters. Subclasses set ``name`` and
    ``params_type`` and implement ``_check``, ``warmup_bars``, ``_indicators`` and ``_weights``
    (which decides from those indicators)."""

    name: ClassVar[str]
    params_type: ClassVar[type]
    # Whether an indicator compares tickers (momentum's rank): then a ticker's indicators
    # need the whole universe; otherwise each column is computed from its own closes alone.
    cross_sectional: ClassVar[bool] = False

    def __init__(self, params: Any = None, *, where: str = "strategy") -> None:
        params = self.params_type() if params is None else params
        if not isinstance(params, self.params_type):
            raise TypeError(f"{self.name} takes {self.params_type.__name__}, got {params!r}")
        self._check(params, f"{where}.parameters")
        self.params = params

    @property
    def frequency(self) -> str:
        """How often the strategy trades: one of ``FREQUENCIES``."""
        return self.params.frequency

    @property
    def warmup_bars(self) -> int:
        """Bars of history (rows, including today) needed before anything can be held."""
        raise NotImplementedError

    def targets(self, closes: pd.DataFrame) -> pd.DataFrame:
        """Target weights (row t decided at close t); see the module docstring."""
        values = _checked_values(closes)
        weights = self._weights(values, self._indicators(values))
        weights[~np.isfinite(values)] = 0.0
        return pd.DataFrame(weights, index=closes.index, columns=closes.columns)

    def indicators(self, closes: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The series the weights are decided from, by name (each subclass's docstring:
        momentum ``score``, ``sma`` and ``rank``; mean reversion ``z``; trend following
        ``sma`` or ``fast`` and ``slow``), frames shaped like ``closes``. The very arrays
        ``targets`` decides from, so row t uses rows 0..t only; NaN where undefined."""
        values = _checked_values(closes)
        return {
            name: pd.DataFrame(v, index=closes.index, columns=closes.columns)
            for name, v in self._indicators(values).items()
        }

    def levels(self, n_columns: int) -> dict[str, tuple[str, float]]:
        """The thresholds the weights compare an indicator with: label -> (indicator
        name, level), for a universe of ``n_columns`` tickers; none by default (trend
        following compares two series)."""
        return {}

    @classmethod
    def _check(cls, params: Any, at: str) -> None:
        raise NotImplementedError

    def _indicators(self, values: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _weights(self, values: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


# --- momentum ----------------------------------------------------------------------------


@dataclass(frozen=True)
class MomentumParams:
    lookback: int = 120
    sma_filter: int | None = 200
    top_n: int | None = None
    frequency: str = "monthly"


class MomentumSignalV2(Signal):
    """Cross-sectional top-N momentum with a trend filter, long only.

    score_t = close_t / close_{t-lookback} - 1 (lookback in bars: a positional shift).
    A ticker is eligible at t when score_t is finite and, unless ``sma_filter`` is null,
    close_t > SMA_{sma_filter,t}, the mean of the last ``sma_filter`` closes including t
    (NaN, so not eligible, unless all ``sma_filter`` of them are present). The
    ``top_n`` eligible tickers by descending score are held at exactly 1/top_n each; ties
    go to the earlier column (stable sort). With fewer than ``top_n`` eligible the rest
    stays in cash. ``top_n`` null means max(2, n_columns // 4). Shorts are not supported.

    warmup_bars = max(lookback + 1, sma_filter or 0): the first row index with a score is
    ``lookback`` and the first with an SMA is ``sma_filter - 1``.
    """

    name = "MomentumSignalV2"
    params_type = MomentumParams
    cross_sectional = True

    @classmethod
    def _check(cls, p: MomentumParams, at: str) -> None:
        _check_int(at, "lookback", p.lookback, 1)
        # An SMA of one bar is the close itself: close > SMA never holds, nothing trades.
        _check_int(at, "sma_filter", p.sma_filter, 2, optional=True)
        _check_int(at, "top_n", p.top_n, 1, optional=True)
        _check_frequency(at, p.frequency)

    @property
    def warmup_bars(self) -> int:
        return max(self.params.lookback + 1, self.params.sma_filter or 0)

    def top_n_count(self, n_columns: int) -> int:
        """``top_n``, or max(2, n_columns // 4) when it is null."""
        return self.params.top_n if self.params.top_n is not None else max(2, n_columns // 4)

    def levels(self, n_columns: int) -> dict[str, tuple[str, float]]:
        return {f"top-{self.top_n_count(n_columns)} cut": ("rank", self.top_n_count(n_columns))}

    def _indicators(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """score (trailing return), sma (the trend filter's, when set) and rank (1 = the
        best eligible score that date, NaN when not eligible)."""
        p = self.params
        n, k = values.shape
        lb = p.lookback
        score = np.full((n, k), np.nan)
        if n > lb:
            with np.errstate(divide="ignore", invalid="ignore"):
                score[lb:] = values[lb:] / values[:-lb] - 1.0
        eligible = np.isfinite(score)
        out = {"score": score}
        if p.sma_filter is not None:
            out["sma"] = _sma(values, p.sma_filter)
            with np.errstate(invalid="ignore"):
                eligible &= values > out["sma"]
        out["rank"] = eligible_rank(score, eligible)
        return out

    def _weights(self, values: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
        return top_n_weights(ind["rank"], self.top_n_count(values.shape[1]))


def eligible_rank(score: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Row by row: 1 for the eligible column with the highest score, 2 for the next, ...
    (ties to the earlier column); NaN where not eligible. Shapes (n, k) in, (n, k) out."""
    n, k = score.shape
    rank = np.full((n, k), np.nan)
    if n == 0 or k == 0:
        return rank
    # Ineligible columns sort last; a stable ascending sort of -score keeps column order
    # among equal scores.
    key = np.where(eligible, -score, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(1.0, k + 1), (n, k)), axis=1)
    rank[~eligible] = np.nan
    return rank


def top_n_weights(rank: np.ndarray, top_n: int) -> np.ndarray:
    """1/top_n where ``rank`` (``eligible_rank``) is at most ``top_n``, 0 elsewhere."""
    with np.errstate(invalid="ignore"):
        return np.where(rank <= top_n, 1.0 / top_n, 0.0)


# --- mean reversion ----------------------------------------------------------------------


@dataclass(frozen=True)
class MeanReversionParams:
    window: int = 20
    entry_z: float = 2.0
    exit_z: float = 0.5
    long_only: bool = False
    frequency: str = "daily"


class MeanReversionSignal(Signal):
    """Z-score mean reversion with entry/exit hysteresis.

    z_t = (close_t - mean_t) / std_t, the mean and sample std (ddof=1) of the last
    ``window`` closes including t (NaN unless all ``window`` are present, or if std is 0).
    Each ticker carries a state, updated from z_t alone, one transition per bar:
    flat -> long when z < -entry_z; flat -> short when z > entry_z (never if long_only);
    long -> flat when z >= -exit_z; short -> flat when z <= exit_z; NaN z -> flat.
    Weight = sign / n_open, where n_open is the number of open positions that date, so
    gross exposure is 1 whenever anything is open. warmup_bars = window.
    """

    name = "MeanReversionSignal"
    params_type = MeanReversionParams

    @classmethod
    def _check(cls, p: MeanReversionParams, at: str) -> None:
        _check_int(at, "window", p.window, 2)  # a sample std needs two values
        entry = _check_number(at, "entry_z", p.entry_z)
        if entry <= 0:
            raise ConfigError(f"{at}.entry_z", f"must be > 0, got {p.entry_z!r}")
        exit_ = _check_number(at, "exit_z", p.exit_z)
        if not 0 <= exit_ < entry:
            raise ConfigError(
                f"{at}.exit_z", f"must satisfy 0 <= exit_z < entry_z ({entry}), got {p.exit_z!r}"
            )
        _check_flag(at, "long_only", p.long_only)
        _check_frequency(at, p.frequency)

    @property
    def warmup_bars(self) -> int:
        return self.params.window

    def levels(self, n_columns: int) -> dict[str, tuple[str, float]]:
        p = self.params
        out = {"entry long": ("z", -p.entry_z), "exit long": ("z", -p.exit_z)}
        if not p.long_only:
            out.update({"entry short": ("z", p.entry_z), "exit short": ("z", p.exit_z)})
        return out

    def _indicators(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return {"z": rolling_zscore(values, self.params.window)}

    def _weights(self, values: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
        p = self.params
        z = ind["z"]
        # Comparisons with NaN are False, which sends every state to flat, as specified.
        with np.errstate(invalid="ignore"):
            from_flat = np.where(z < -p.entry_z, LONG, FLAT)
            if not p.long_only:
                from_flat[z > p.entry_z] = SHORT
            from_long = np.where(z < -p.exit_z, LONG, FLAT)
            from_short = np.where(z > p.exit_z, SHORT, FLAT)
        state = run_states(from_flat, from_long, from_short)
        sign = _SIGN_OF_STATE[state]
        return _spread(sign, np.count_nonzero(sign, axis=1))


def rolling_zscore(values: np.ndarray, window: int) -> np.ndarray:
    """(x_t - mean) / std over the last ``window`` rows including t (ddof=1); NaN without
    ``window`` values or where std is 0."""
    roll = pd.DataFrame(values).rolling(window, min_periods=window)
    mean, std = roll.mean().to_numpy(), roll.std(ddof=1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 0, (values - mean) / std, np.nan)


def run_states(from_flat: np.ndarray, from_long: np.ndarray, from_short: np.ndarray) -> np.ndarray:
    """Run the per-ticker state machine forward from all-flat. ``from_s[t, c]`` is the state
    of column c at t given state s at t-1. Returns the (n, k) states."""
    n, k = from_flat.shape
    cols = np.arange(k)
    # Encode (state, column) as state * k + column, so that one gather per row advances
    # every column at once: table[t, s*k + c] = next_state * k + c.
    table = np.concatenate([from_flat, from_long, from_short], axis=1) * k + np.tile(cols, 3)
    out = np.empty((n, k), dtype=np.intp)
    code = cols * 1  # all flat
    for t in range(n):
        code = table[t, code]
        out[t] = code
    return out // k if k else out


# --- trend following ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrendParams:
    window: int = 50
    fast: int | None = None
    slow: int | None = None
    long_only: bool = True
    frequency: str = "daily"


class TrendFollowingSignal(Signal):
    """Time-series trend following, equal weight over the tickers with a defined trend.

    With ``fast`` and ``slow`` (both or neither; fast < slow): in trend when
    SMA_fast > SMA_slow, and ``window`` is ignored. Otherwise: in trend when
    close_t > SMA_window. SMAs include t and need all their closes present. In-trend
    tickers are long (+1); if not long_only, out-of-trend tickers are short (-1).
    Weight = sign / n_eligible, where n_eligible counts the tickers with a price and
    defined SMA(s) that date: gross exposure <= 1 and grows with the number of trends.
    warmup_bars = slow if fast/slow are set, else window.
    """

    name = "TrendFollowingSignal"
    params_type = TrendParams

    @classmethod
    def _check(cls, p: TrendParams, at: str) -> None:
        # SMA_1 is the close itself, so close > SMA_1 would never hold.
        _check_int(at, "window", p.window, 2)
        _check_int(at, "fast", p.fast, 1, optional=True)
        _check_int(at, "slow", p.slow, 2, optional=True)
        if (p.fast is None) != (p.slow is None):
            missing = "slow" if p.slow is None else "fast"
            raise ConfigError(f"{at}.{missing}", "fast and slow must be given together")
        if p.fast is not None and p.fast >= p.slow:
            raise ConfigError(f"{at}.fast", f"must be < slow ({p.slow}), got {p.fast!r}")
        _check_flag(at, "long_only", p.long_only)
        _check_frequency(at, p.frequency)

    @property
    def warmup_bars(self) -> int:
        return self.params.slow if self.params.slow is not None else self.params.window

    def _indicators(self, values: np.ndarray) -> dict[str, np.ndarray]:
        p = self.params
        if p.fast is not None:
            return {"fast": _sma(values, p.fast), "slow": _sma(values, p.slow)}
        return {"sma": _sma(values, p.window)}

    def _weights(self, values: np.ndarray, ind: dict[str, np.ndarray]) -> np.ndarray:
        p = self.params
        if p.fast is not None:
            fast, slow = ind["fast"], ind["slow"]
            eligible = np.isfinite(fast) & np.isfinite(slow)
            with np.errstate(invalid="ignore"):
                in_trend = fast > slow
        else:
            sma = ind["sma"]
            eligible = np.isfinite(sma)
            with np.errstate(invalid="ignore"):
                in_trend = values > sma
        eligible &= np.isfinite(values)
        sign = np.where(eligible & in_trend, 1.0, 0.0)
        if not p.long_only:
            sign[eligible & ~in_trend] = -1.0
        return _spread(sign, eligible.sum(axis=1))


# --- registry ----------------------------------------------------------------------------

SIGNALS: dict[str, type[Signal]] = {
    cls.name: cls for cls in (MomentumSignalV2, MeanReversionSignal, TrendFollowingSignal)
}


def signal_from_config(
    signal_type: str, parameters: Mapping[str, Any] | None, *, where: str = "strategy"
) -> Signal:
    """Build the registered signal ``signal_type`` from its ``parameters`` mapping (None or
    missing keys take the defaults). Raises ``ConfigError`` at ``{where}.signal_type`` for an
    unknown type, at ``{where}.parameters.<key>`` for an unknown key, a wrong type or an
    out-of-range value."""
    cls = SIGNALS.get(signal_type) if isinstance(signal_type, str) else None
    if cls is None:
        raise ConfigError(
            f"{where}.signal_type",
            f"unknown signal type {signal_type!r}; known: {', '.join(sorted(SIGNALS))}",
        )
    parameters = {} if parameters is None else parameters
    if not isinstance(parameters, Mapping):
        raise ConfigError(f"{where}.parameters", f"must be a mapping, got {parameters!r}")
    allowed = [f.name for f in fields(cls.params_type)]
    for key in parameters:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"{where}.parameters.{key}",
                f"unknown parameter{hint}; allowed: {', '.join(allowed)}",
            )
    return cls(cls.params_type(**parameters), where=where)
