"""Monte Carlo of the portfolio's value: a stationary block bootstrap of the strategies'
joint daily returns (pure numpy).

Shapes and units:
  * ``returns``: T x N daily *simple* returns (fractions) of the N strategies, rows are
    days. A row is resampled whole, which is what keeps the strategies' cross-correlation;
    blocks of consecutive rows keep their autocorrelation up to about ``mean_block`` days.
  * ``weights``: N fractions of portfolio equity held in each strategy; ``1 - sum`` is cash
    at 0 % (a negative remainder is borrowing at 0 %).
  * index arrays: paths x horizon ints, rows of ``returns``.
  * value paths: paths x (horizon + 1), day 0 is ``value0``; same currency as ``value0``.
  * drawdowns: negative fractions of the running peak (0 at a new peak).

Constant mix: the books are assumed rebalanced to ``weights`` every day, so the portfolio's
daily return is ``p = returns @ weights`` and ``V_t = value0 * prod_{s<=t} (1 + p_s)``. The
books' drift between the portfolio's real rebalances is ignored. Because the mix is
constant, resampling rows of ``p`` is the same as resampling rows of ``returns`` and then
mixing: ``p`` is computed once (T floats) and only it is gathered per path.

Memory: paths are simulated in chunks of at most ``_CHUNK_CELLS`` path-days (4 MB per
int64/float64 temporary), so the bootstrap's temporaries stay near 20 MB whatever
``paths`` is; the one full-size array kept is the value paths for the fan chart
(paths x (horizon + 1) float64, 20 MB at 10,000 x 252; its quantiles copy it once).
Measured with tracemalloc at 10,000 x 252 x 10: about 50 MiB peak in ``simulate``,
most of it the value paths and their copy for the quantiles. The per-strategy gather
``returns[idx]`` (for the strategies' own terminal quantiles) is done in sub-chunks of at
most ``_GATHER_CELLS`` path-day-strategy cells (16 MB). The chunk size depends only on
``horizon``, so a given (seed, paths, horizon) always draws the same stream: bit-identical
results (another ``_CHUNK_CELLS`` would draw another, equally valid, sample).

Quantiles are ``np.quantile``'s default linear interpolation over the paths.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

TERMINAL_QUANTILES = (0.05, 0.5, 0.95)
_CHUNK_CELLS = 1 << 19
_GATHER_CELLS = 1 << 21


def _qkey(q: float) -> str:
    """0.05 -> "p5", 0.5 -> "p50", 0.975 -> "p97.5"."""
    return f"p{100 * q:g}"


@dataclass(frozen=True, eq=False)
class MonteCarloResult:
    """What ``simulate`` returns.

    ``fan``: len(fan_quantiles) x (horizon + 1) array, row k the ``fan_quantiles[k]``
    quantile over paths of the portfolio value on each day (day 0 = ``value0``).
    ``terminal_quantiles`` / ``max_drawdown_quantiles``: quantile (0.05, 0.5, 0.95) ->
    the quantile over paths of the terminal value ``V_H`` / of the path's max drawdown
    ``min_{0<=t<=H} (V_t / peak_t - 1)`` (peak starting at ``value0 / (1 + start_drawdown)``,
    so a path never below its peak has 0 and one already in a drawdown has at most
    ``start_drawdown``). ``p_breach_drawdown``: fraction of paths whose drawdown is below
    ``drawdown_limit`` on any day 0..H (None without a limit), ``p_breach_stderr`` its
    binomial standard error ``sqrt(p (1 - p) / paths)``. ``terminal_mean``: mean of
    ``V_H``; ``p_loss``: fraction of paths with ``V_H < value0``.
    ``strategy_growth_quantiles``: N x 3 array, the (0.05, 0.5, 0.95) quantiles over the
    same paths of each strategy's own growth of 1 ``prod(1 + r_i)`` (None if not asked;
    taken as ``exp`` of the quantiles of ``sum log(1 + r_i)``, which is the same up to the
    interpolation between neighbouring paths).
    """

    paths: int
    horizon: int
    mean_block: float
    seed: int
    value0: float
    start_drawdown: float
    drawdown_limit: float | None
    fan_quantiles: tuple[float, ...]
    fan: np.ndarray
    terminal_quantiles: dict[float, float]
    max_drawdown_quantiles: dict[float, float]
    p_breach_drawdown: float | None
    p_breach_stderr: float | None
    terminal_mean: float
    p_loss: float
    strategy_growth_quantiles: np.ndarray | None = field(default=None)
    # every path's V_H and max drawdown (``paths`` floats each), for the distributions'
    # histograms; not in ``to_dict``
    terminal_values: np.ndarray | None = field(default=None, repr=False)
    max_drawdowns: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready: plain floats and lists, quantile keys as "p5", "p50", "p95"."""
        growth = None
        if self.strategy_growth_quantiles is not None:
            growth = {
                _qkey(q): [float(x) for x in self.strategy_growth_quantiles[:, k]]
                for k, q in enumerate(TERMINAL_QUANTILES)
            }
        return {
            "paths": self.paths,
            "horizon": self.horizon,
            "mean_block": float(self.mean_block),
            "seed": self.seed,
            "value0": float(self.value0),
            "start_drawdown": float(self.start_drawdown),
            "drawdown_limit": None if self.drawdown_limit is None else float(self.drawdown_limit),
            "p_breach_drawdown": self.p_breach_drawdown,
            "p_breach_stderr": self.p_breach_stderr,
            "terminal_value": {_qkey(q): float(v) for q, v in self.terminal_quantiles.items()},
            "terminal_mean": float(self.terminal_mean),
            "p_loss": float(self.p_loss),
            "max_drawdown": {_qkey(q): float(v) for q, v in self.max_drawdown_quantiles.items()},
            "fan": {
                _qkey(q): [float(x) for x in self.fan[k]] for k, q in enumerate(self.fan_quantiles)
            },
            "strategy_growth": growth,
        }


def bootstrap_indices(
    *, n_obs: int, paths: int, horizon: int, mean_block: float, rng: np.random.Generator
) -> np.ndarray:
    """Politis & Romano (1994) stationary bootstrap: a paths x horizon array of row indices.

    Day 0 of every path starts a block; each later day starts a new block with probability
    ``1 / mean_block``, so block lengths are geometric with mean ``mean_block``
    (``mean_block = 1``: every day is a new block, the i.i.d. bootstrap). A block starts at
    a uniform random row and continues with consecutive rows, wrapping circularly
    (``n_obs - 1`` is followed by 0). Vectorized: the day each position's block started is
    ``np.maximum.accumulate`` of the block-start days, the index is that block's start row
    plus the offset since then, modulo ``n_obs``.
    """
    _check_int(n_obs=n_obs, paths=paths, horizon=horizon)
    if n_obs < 1:
        raise ValueError(f"n_obs must be >= 1, got {n_obs}")
    mean_block = _check_mean_block(mean_block)
    days = np.arange(horizon, dtype=np.intp)
    new = rng.random((paths, horizon)) < 1.0 / mean_block
    new[:, 0] = True
    start_day = np.where(new, days, 0)
    del new  # the temporaries are the chunk's memory: free each as soon as it is used
    np.maximum.accumulate(start_day, axis=1, out=start_day)
    start_row = rng.integers(0, n_obs, size=(paths, horizon), dtype=np.intp)
    rows = np.take_along_axis(start_row, start_day, axis=1)
    del start_row
    rows += days - start_day
    rows %= n_obs
    return rows


def value_paths(
    *, portfolio_returns: np.ndarray, idx: np.ndarray, value0: float, start_drawdown: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Value paths and drawdown paths for given resampling indices.

    ``V_0 = value0``, ``V_t = value0 * prod_{s<t} (1 + p[idx[:, s]])`` (paths x (H + 1));
    drawdown ``D_t = V_t / max(peak_0, max_{s<=t} V_s) - 1`` with
    ``peak_0 = value0 / (1 + start_drawdown)``.
    """
    n, h = idx.shape
    values = np.empty((n, h + 1))
    values[:, 0] = value0
    np.cumprod(1.0 + portfolio_returns[idx], axis=1, out=values[:, 1:])
    values[:, 1:] *= value0
    peak = np.maximum.accumulate(values, axis=1)
    np.maximum(peak, value0 / (1.0 + start_drawdown), out=peak)
    return values, values / peak - 1.0


def simulate(
    *,
    returns: np.ndarray,
    weights: np.ndarray | Sequence[float],
    value0: float,
    paths: int,
    horizon: int,
    mean_block: float,
    seed: int,
    drawdown_limit: float | None = None,
    start_drawdown: float = 0.0,
    fan_quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    per_strategy: bool = True,
) -> MonteCarloResult:
    """``paths`` bootstrapped futures of ``horizon`` days of the portfolio (module docstring).

    ``seed`` feeds ``np.random.default_rng``; the same inputs and seed give a bit-identical
    result. ``drawdown_limit``: a negative fraction (-0.15); ``start_drawdown`` (<= 0): the
    portfolio's drawdown from its risk peak today. ``per_strategy=False`` skips the
    strategies' own growth quantiles (the one part that gathers the full T x N rows).
    """
    r, w, p = _check_inputs(returns=returns, weights=weights)
    _check_int(paths=paths, horizon=horizon, seed=seed)
    mean_block = _check_mean_block(mean_block)
    value0, limit, start, fan_q = _check_levels(
        value0=value0,
        drawdown_limit=drawdown_limit,
        start_drawdown=start_drawdown,
        fan_quantiles=fan_quantiles,
    )
    rng = np.random.default_rng(seed)
    values = np.empty((paths, horizon + 1))
    max_dd = np.empty(paths)
    breached = np.zeros(paths, dtype=bool)
    log_growth = np.empty((paths, r.shape[1])) if per_strategy else None
    log_r = np.log1p(r) if per_strategy else None
    chunk = max(1, _CHUNK_CELLS // horizon)
    for lo in range(0, paths, chunk):
        hi = min(paths, lo + chunk)
        idx = bootstrap_indices(
            n_obs=r.shape[0], paths=hi - lo, horizon=horizon, mean_block=mean_block, rng=rng
        )
        v, dd = value_paths(portfolio_returns=p, idx=idx, value0=value0, start_drawdown=start)
        values[lo:hi] = v
        max_dd[lo:hi] = dd.min(axis=1)
        if limit is not None:
            breached[lo:hi] = (dd < limit).any(axis=1)
        if log_growth is not None:
            _gather_log_growth(log_r, idx, out=log_growth[lo:hi])
    return _summarize(
        values=values,
        max_dd=max_dd,
        breached=breached if limit is not None else None,
        log_growth=log_growth,
        fan_q=fan_q,
        meta={
            "paths": paths,
            "horizon": horizon,
            "mean_block": mean_block,
            "seed": seed,
            "value0": value0,
            "start_drawdown": start,
            "drawdown_limit": limit,
        },
    )


def _gather_log_growth(log_r: np.ndarray, idx: np.ndarray, *, out: np.ndarray) -> None:
    """``out[j, i] = sum_t log(1 + r[idx[j, t], i])``, gathered a few paths at a time."""
    step = max(1, _GATHER_CELLS // (idx.shape[1] * log_r.shape[1]))
    for lo in range(0, idx.shape[0], step):
        out[lo : lo + step] = log_r[idx[lo : lo + step]].sum(axis=1)


def _summarize(
    *,
    values: np.ndarray,
    max_dd: np.ndarray,
    breached: np.ndarray | None,
    log_growth: np.ndarray | None,
    fan_q: tuple[float, ...],
    meta: dict,
) -> MonteCarloResult:
    paths = values.shape[0]
    terminal = values[:, -1]
    tq = np.quantile(terminal, TERMINAL_QUANTILES)
    dq = np.quantile(max_dd, TERMINAL_QUANTILES)
    p_breach = stderr = None
    if breached is not None:
        p_breach = float(breached.mean())
        stderr = math.sqrt(p_breach * (1.0 - p_breach) / paths)
    growth = None
    if log_growth is not None:
        growth = np.exp(np.quantile(log_growth, TERMINAL_QUANTILES, axis=0)).T
    return MonteCarloResult(
        **meta,
        fan_quantiles=fan_q,
        fan=np.quantile(values, fan_q, axis=0),
        terminal_quantiles={q: float(x) for q, x in zip(TERMINAL_QUANTILES, tq, strict=True)},
        max_drawdown_quantiles={q: float(x) for q, x in zip(TERMINAL_QUANTILES, dq, strict=True)},
        p_breach_drawdown=p_breach,
        p_breach_stderr=stderr,
        terminal_mean=float(terminal.mean()),
        p_loss=float((terminal < meta["value0"]).mean()),
        strategy_growth_quantiles=growth,
        terminal_values=terminal.copy(),
        max_drawdowns=max_dd,
    )


def _check_int(**values: object) -> None:
    for name, x in values.items():
        if isinstance(x, bool) or not isinstance(x, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {x!r}")
        if name != "seed" and name != "n_obs" and x < 1:
            raise ValueError(f"{name} must be >= 1, got {x}")


def _check_mean_block(mean_block: float) -> float:
    m = float(mean_block)
    if not math.isfinite(m) or m < 1:
        raise ValueError(f"mean_block must be a finite number >= 1, got {mean_block!r}")
    return m


def _check_inputs(
    *, returns: np.ndarray, weights: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.asarray(returns, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"returns must be 2-D (days x strategies), got shape {r.shape}")
    if r.shape[0] < 2:
        raise ValueError(f"returns needs at least 2 rows (days), got {r.shape[0]}")
    if r.shape[1] < 1:
        raise ValueError("returns has no strategy columns")
    bad = ~np.isfinite(r)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"returns has a NaN or infinite value (row {row}, column {col})")
    if (r <= -1).any():
        raise ValueError("returns has a return <= -100 %")
    w = np.asarray(weights, dtype=float)
    if w.shape != (r.shape[1],):
        raise ValueError(f"weights has shape {w.shape}, returns has {r.shape[1]} strategies")
    if not np.isfinite(w).all():
        raise ValueError("weights must be finite")
    p = r @ w
    if (p <= -1).any():
        raise ValueError("the weighted portfolio return is <= -100 % on some row")
    return r, w, p


def _check_levels(
    *,
    value0: float,
    drawdown_limit: float | None,
    start_drawdown: float,
    fan_quantiles: Sequence[float],
) -> tuple[float, float | None, float, tuple[float, ...]]:
    v = float(value0)
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"value0 must be a positive number, got {value0!r}")
    limit = None if drawdown_limit is None else float(drawdown_limit)
    if limit is not None and not -1 < limit < 0:
        raise ValueError(
            f"drawdown_limit is a negative fraction in (-1, 0), e.g. -0.15; got {drawdown_limit!r}"
        )
    start = float(start_drawdown)
    if not -1 < start <= 0:
        raise ValueError(f"start_drawdown must be in (-1, 0], got {start_drawdown!r}")
    fan_q = tuple(float(q) for q in fan_quantiles)
    if not fan_q or not all(0 <= q <= 1 for q in fan_q):
        raise ValueError(f"fan_quantiles must be non-empty, each in [0, 1]; got {fan_quantiles!r}")
    return v, limit, start, fan_q
