"""Capital allocation across strategies: pure functions from return history to weights.

Shapes and units. ``returns`` is a float array ``T x N`` (oldest row first, no NaN) of the
strategies' *unit* daily returns: a book's daily simple return with flows excluded, divided
by the portfolio's exposure scale that day (the sum of the allocations; 1 for an unlevered
static portfolio). A book trades its targets scaled by that sum, so its return is about
``sum(a) * u_i`` and the portfolio's is ``sum_i a_i * u_i``: the allocations ``a`` are the
exposure weights on unit returns, whatever the history's leverage was. Covariances are
sample covariances (ddof=1) of daily returns; annualized figures use 252 days.

The weight functions (``inverse_vol_weights``, ``risk_parity_weights``,
``performance_weights``, ``kelly_weights``, ``hrp_weights``) are the maths, one formula each.
``allocation_targets`` is the portfolio rule around them: which strategies take part
(``min_history``, paused books), the leverage target, and a note per strategy saying why
it got its weight, for the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import nnls
from scipy.spatial.distance import squareform

TRADING_DAYS = 252
METHODS = (
    "static",
    "inverse_volatility",
    "risk_parity",
    "performance",
    "kelly",
    "hierarchical_risk_budget",
)
LINKAGES = ("single", "average", "complete", "ward")


class AllocationError(ValueError):
    """The inputs admit no weights (e.g. a singular covariance the method cannot use)."""


@dataclass(frozen=True)
class AllocationParams:
    """A portfolio's allocation rule (validated by ``config_schema.parse_allocation_params``).

    lookback: trailing days of unit returns the estimates use.
    min_history: days of return history a strategy needs before the method sets its weight;
        until then it keeps its static weight.
    risk_budgets: strategy -> share of portfolio variance (risk_parity), normalized to 1.
    metric, risk_free, min_weight, max_weight: the performance method's score and bounds.
    fraction, max_leverage: fractional Kelly; max_leverage caps the sum of allocations of
        kelly and hierarchical_risk_budget (default: the portfolio's leverage target).
    vol_target: hierarchical_risk_budget's portfolio volatility budget (annualized).
    linkage: hierarchical clustering linkage for hierarchical_risk_budget.
    """

    method: str = "static"
    lookback: int = 63
    min_history: int = 63
    risk_budgets: tuple[tuple[str, float], ...] = ()
    metric: str = "sharpe"
    risk_free: float = 0.0
    min_weight: float = 0.0
    max_weight: float = 1.0
    fraction: float = 0.5
    max_leverage: float | None = None
    vol_target: float | None = None
    linkage: str = "single"


@dataclass(frozen=True)
class AllocationResult:
    """New allocations (fractions of portfolio equity; they sum to the exposure scale) and,
    per strategy, the numbers behind its weight and a sentence for the page."""

    allocations: dict[str, float]
    stats: dict[str, dict[str, float]]
    notes: dict[str, str]


# --- the weight functions -------------------------------------------------------------


def inverse_vol_weights(returns: np.ndarray) -> np.ndarray:
    """``w_i = (1/sigma_i) / sum_j (1/sigma_j)``, sigma the sample std (ddof=1) of each
    column. Every sigma must be positive."""
    sigma = np.std(returns, axis=0, ddof=1)
    if not np.all(sigma > 0):
        raise AllocationError("inverse volatility needs every strategy's volatility > 0")
    inv = 1.0 / sigma
    return inv / inv.sum()


def risk_contributions(weights: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """``RC_i = w_i (S w)_i / sqrt(w' S w)``: they sum to the portfolio vol sqrt(w'Sw)."""
    sw = cov @ weights
    return weights * sw / math.sqrt(float(weights @ sw))


def risk_parity_weights(cov: np.ndarray, budgets: np.ndarray | None = None) -> np.ndarray:
    """Equal risk contribution (or contribution ``b_i`` of the variance when budgets given).

    Solves Spinu's (2013) strictly convex problem ``min_y 1/2 y'Sy - sum_i b_i ln y_i`` over
    ``y > 0``, whose stationarity condition ``y_i (S y)_i = b_i`` is the budget condition;
    then ``w = y / sum(y)``, so ``w_i (S w)_i / (w'Sw) = b_i``. ``S`` is first scaled to unit
    mean variance (the solution is scale free). Newton's method on the gradient
    ``S y - b / y`` with the exact Hessian ``S + diag(b / y^2)`` (positive definite), steps
    halved to stay in ``y > 0``, from the inverse-volatility point; it converges
    quadratically (a handful of steps to machine precision). The result is checked by the
    risk contributions themselves: each share within 1e-9 of its budget, or AllocationError.
    The tests cross-check it against skfolio's RiskBudgeting (a conic solver).
    """
    n = cov.shape[0]
    b = np.full(n, 1.0 / n) if budgets is None else np.asarray(budgets, float) / np.sum(budgets)
    scale = float(np.mean(np.diag(cov)))
    if not scale > 0 or not np.all(np.diag(cov) > 0) or np.any(b <= 0):
        raise AllocationError("risk parity needs positive variances and positive budgets")
    s = cov / scale
    y = b / np.sqrt(np.diag(s))
    for _ in range(100):
        grad = s @ y - b / y
        if np.max(np.abs(grad)) < 1e-14:
            break
        step = np.linalg.solve(s + np.diag(b / y**2), grad)
        t = 1.0
        while np.any(y - t * step <= 0):
            t /= 2.0
        y = y - t * step
    w = y / y.sum()
    shares = risk_contributions(w, s) / math.sqrt(float(w @ s @ w))
    error = float(np.max(np.abs(shares - b)))
    if error > 1e-9:
        raise AllocationError(f"risk parity did not converge (largest budget error {error:.2e})")
    return w


def performance_scores(returns: np.ndarray, metric: str, risk_free: float = 0.0) -> np.ndarray:
    """Annualized Sharpe or Sortino of each column, daily risk-free ``rf_d = risk_free/252``.

    Sharpe: ``mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(252)``.
    Sortino (empyrical's): ``mean(r - rf_d) / sqrt(mean(min(r - rf_d, 0)^2)) * sqrt(252)``
    over all days. A zero denominator gives a score of 0.
    """
    excess = returns - risk_free / TRADING_DAYS
    mean = excess.mean(axis=0)
    if metric == "sharpe":
        denom = excess.std(axis=0, ddof=1)
    elif metric == "sortino":
        denom = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=0))
    else:
        raise AllocationError(f"unknown performance metric {metric!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(denom > 0, mean / denom, 0.0) * math.sqrt(TRADING_DAYS)
    return scores


def bounded_weights(scores: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Weights proportional to ``max(score, 0)`` within ``[lo, hi]``, summing to 1.

    ``w_i = clip(lam * s_i, lo, hi)`` with ``lam`` the value making the sum 1. The sum is
    piecewise linear and non-decreasing in ``lam`` with breakpoints ``lo/s_i`` and ``hi/s_i``,
    so ``lam`` is found exactly on the segment where the sum crosses 1. Scores below 1e-12
    of the largest count as 0 (noise). If every score is 0 the weights are equal. If the
    positive scores at ``hi`` plus the rest at ``lo`` still sum below 1, the zero-score
    strategies share the remainder equally. Requires ``n*lo <= 1 <= n*hi``.
    """
    s = np.maximum(np.asarray(scores, float), 0.0)
    n = s.size
    if n * lo > 1 + 1e-12 or n * hi < 1 - 1e-12:
        raise AllocationError(f"bounds [{lo:g}, {hi:g}] cannot hold {n} weights summing to 1")
    if not np.any(s > 0):
        return np.full(n, 1.0 / n)
    s = s / s.max()  # scale free; keeps every breakpoint finite
    s = np.where(s >= 1e-12, s, 0.0)
    positive = s > 0
    ceiling = positive.sum() * hi + (~positive).sum() * lo
    if ceiling < 1:
        w = np.where(positive, hi, lo)
        w[~positive] += (1.0 - ceiling) / (~positive).sum()
        return w

    def total(lam: float) -> float:
        return math.fsum(np.clip(lam * s, lo, hi))

    points = np.unique(np.concatenate([[0.0], lo / s[positive], hi / s[positive]]))
    sums = [total(x) for x in points]
    k = next(i for i, v in enumerate(sums) if v >= 1.0 - 1e-15)
    if k == 0:
        lam = points[0]
    else:
        a, b = points[k - 1], points[k]
        lam = a + (1.0 - sums[k - 1]) * (b - a) / (sums[k] - sums[k - 1])
    w = np.clip(lam * s, lo, hi)
    return w / w.sum()


def performance_weights(
    returns: np.ndarray, metric: str, risk_free: float, lo: float, hi: float
) -> np.ndarray:
    """``bounded_weights(performance_scores(...), lo, hi)``: negative scores floored at 0."""
    return bounded_weights(performance_scores(returns, metric, risk_free), lo, hi)


def kelly_weights(
    returns: np.ndarray, fraction: float, max_leverage: float, long_only: bool = True
) -> np.ndarray:
    """Fractional Kelly allocations from the trailing mean and covariance of daily returns.

    Full Kelly maximizes the second-order growth rate ``g(f) = mu'f - 1/2 f'Sf``
    (mu the mean daily return, S the sample covariance; annualizing both by 252 leaves the
    maximizer unchanged): unconstrained ``f* = S^-1 mu``; long-only ``f* = argmax g`` over
    ``f >= 0``, solved exactly as non-negative least squares on the Cholesky factor
    (``S = L L'``: ``g = -1/2 |L'f - L^-1 mu|^2 + const``; scipy.optimize.nnls). Then
    ``f = fraction * f*``, scaled down so ``sum |f| <= max_leverage``.

    Why a fraction: ``mu`` from a few months of returns is a noisy estimate, and growth
    falls off fast past the optimum (betting 2x Kelly has zero expected growth) while it
    falls slowly below it; half Kelly keeps ~3/4 of the growth for half the volatility.
    """
    mu = returns.mean(axis=0)
    cov = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    ridge = 1e-12 * float(np.mean(np.diag(cov)))
    try:
        low = cholesky(cov + ridge * np.eye(len(mu)), lower=True)
    except np.linalg.LinAlgError as exc:
        raise AllocationError("kelly needs a positive definite covariance") from exc
    if long_only:
        target = solve_triangular(low, mu, lower=True)
        full, _ = nnls(low.T, target)
    else:
        full = np.linalg.solve(cov + ridge * np.eye(len(mu)), mu)
    f = fraction * full
    gross = float(np.abs(f).sum())
    if gross > max_leverage:
        f = f * (max_leverage / gross)
    return f


def hrp_weights(returns: np.ndarray, method: str = "single") -> np.ndarray:
    """Hierarchical risk parity (Lopez de Prado, 2016) over the columns' correlations.

    1. distance ``d_ij = sqrt((1 - rho_ij) / 2)``; hierarchical clustering of ``d`` with
       scipy's ``linkage`` (``method``); the leaves' order is the quasi-diagonal order.
    2. Recursive bisection of that order into halves: each half's variance is that of its
       inverse-variance portfolio, ``V = w'S w`` with ``w_i ∝ 1/S_ii``; the left half gets
       ``alpha = 1 - V_left / (V_left + V_right)`` of the parent's weight, the right the rest.
    """
    n = returns.shape[1]
    if n == 1:
        return np.ones(1)
    cov = np.cov(returns, rowvar=False, ddof=1)
    sd = np.sqrt(np.diag(cov))
    if not np.all(sd > 0):
        raise AllocationError("hierarchical risk parity needs every volatility > 0")
    corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
    dist = np.sqrt(np.clip((1.0 - corr) / 2.0, 0.0, None))
    np.fill_diagonal(dist, 0.0)
    order = leaves_list(linkage(squareform(dist, checks=False), method=method))
    w = np.ones(n)
    clusters = [list(order)]
    while clusters:
        nxt = []
        for c in clusters:
            if len(c) < 2:
                continue
            half = len(c) // 2
            left, right = c[:half], c[half:]
            v_left, v_right = _ivp_variance(cov, left), _ivp_variance(cov, right)
            alpha = 1.0 - v_left / (v_left + v_right)
            w[left] *= alpha
            w[right] *= 1.0 - alpha
            nxt += [left, right]
        clusters = nxt
    return w / w.sum()


def _ivp_variance(cov: np.ndarray, items: list[int]) -> float:
    sub = cov[np.ix_(items, items)]
    ivp = 1.0 / np.diag(sub)
    ivp /= ivp.sum()
    return float(ivp @ sub @ ivp)


def annual_vol(weights: np.ndarray, cov: np.ndarray) -> float:
    """Portfolio volatility ``sqrt(252 * w'Sw)`` from daily covariance ``S``."""
    return math.sqrt(TRADING_DAYS * float(weights @ cov @ weights))


# --- the portfolio rule --------------------------------------------------------------


def allocation_targets(
    params: AllocationParams,
    *,
    names: list[str],
    static: dict[str, float],
    current: dict[str, float],
    active: dict[str, bool],
    history_days: dict[str, int],
    returns: np.ndarray,
    leverage_target: float,
) -> AllocationResult:
    """The allocations ``params.method`` sets now, with the reason for each.

    ``returns`` holds the trailing unit returns (rows oldest first, columns in ``names``
    order). Who takes part:

    * a paused strategy keeps its current allocation (its capital does not move);
    * an active strategy with fewer than ``min_history`` days of return history (days since
      its first non-zero return), or with no return variation in the window, keeps its
      static weight;
    * the rest ("eligible") share the remaining budget ``B = L - sum(kept)`` (L the
      leverage target) by the method. The estimation window is the last
      ``min(lookback, shortest eligible history)`` days, common to all of them.

    Normalized methods (inverse_volatility, risk_parity, performance) give ``B * mix``;
    performance's ``min_weight``/``max_weight`` bound the portfolio weight ``a_i / L``.
    kelly gives ``f * B / L``; hierarchical_risk_budget gives ``mix * T * B / L`` with
    ``T = min(vol_target / vol(mix), max_leverage)`` (``T = L`` without a vol target): these
    two set the portfolio's exposure themselves, so allocations may sum to less (or, up to
    ``max_leverage``, more) than L.
    """
    if params.method == "static":
        return AllocationResult(dict(static), {}, {n: "static weight" for n in names})
    kept, notes = {}, {}
    for i, n in enumerate(names):
        if not active[n]:
            kept[n], notes[n] = current[n], "paused: keeps its allocation"
        elif history_days[n] < params.min_history or len(returns) < 2:
            kept[n] = static[n]
            notes[n] = (
                f"static weight until it has {params.min_history} days of history "
                f"(has {history_days[n]})"
            )
        elif not np.std(returns[-params.lookback :, i], ddof=1) > 0:
            kept[n], notes[n] = static[n], "static weight: no return variation in the window"
    eligible = [i for i, n in enumerate(names) if n not in kept]
    allocations = dict(kept)
    stats: dict[str, dict[str, float]] = {}
    if eligible:
        rows = min(params.lookback, min(history_days[names[i]] for i in eligible))
        window = returns[-rows:, eligible]
        budget = max(leverage_target - math.fsum(kept.values()), 0.0)
        chosen = [names[i] for i in eligible]
        values, extra = _method_allocations(params, window, budget, leverage_target, chosen)
        cov = np.atleast_2d(np.cov(window, rowvar=False, ddof=1))
        shares = _risk_shares(values, cov)
        for j, n in enumerate(chosen):
            allocations[n] = max(float(values[j]), 0.0)
            stats[n] = {
                "vol": math.sqrt(TRADING_DAYS * cov[j, j]),
                "risk_share": float(shares[j]),
                "window_days": float(rows),
                **{k: float(v[j]) for k, v in extra.items()},
            }
            notes[n] = _note(params.method, stats[n], allocations[n])
    return AllocationResult(allocations, stats, notes)


def _method_allocations(params, window, budget, leverage, names):
    """(allocations, per-strategy numbers) of the eligible strategies."""
    method = params.method
    cap = leverage if params.max_leverage is None else params.max_leverage
    if method == "inverse_volatility":
        return budget * inverse_vol_weights(window), {}
    cov = np.atleast_2d(np.cov(window, rowvar=False, ddof=1))
    if method == "risk_parity":
        given = dict(params.risk_budgets)
        b = np.array([given[n] for n in names]) if given else np.ones(len(names))
        b = b / b.sum()
        return budget * risk_parity_weights(cov, b), {"budget": b}
    if method == "performance":
        scores = performance_scores(window, params.metric, params.risk_free)
        if not budget > 0:
            return np.zeros(len(names)), {"score": scores}
        # the floor and cap are on the portfolio weight a_i / L: as shares of the budget B
        # they are lo * L / B and hi * L / B
        lo, hi = params.min_weight * leverage / budget, params.max_weight * leverage / budget
        mix = bounded_weights_capped(scores, lo, hi)
        return budget * mix, {"score": scores}
    if method == "kelly":
        full = kelly_weights(window, 1.0, math.inf)  # the uncapped optimum, for the page
        f = kelly_weights(window, params.fraction, cap)
        return f * budget / leverage, {"kelly_full": full}
    if method == "hierarchical_risk_budget":
        mix = hrp_weights(window, params.linkage)
        total = leverage
        if params.vol_target is not None:
            vol = annual_vol(mix, cov)
            total = min(params.vol_target / vol, cap) if vol > 0 else cap
        return mix * total * budget / leverage, {"hrp_weight": mix}
    raise AllocationError(f"unknown allocation method {method!r}")


def bounded_weights_capped(scores: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``bounded_weights`` when ``n*hi >= 1``; otherwise every weight is ``hi`` (the caps
    hold and ``1 - n*hi`` of the budget stays unallocated). A floor above ``1/n`` (possible
    when some strategies kept their static weight) is lowered to ``1/n``."""
    n = len(scores)
    if n * hi < 1:
        return np.full(n, hi)
    return bounded_weights(scores, min(lo, 1.0 / n), min(hi, 1.0))


def _risk_shares(values: np.ndarray, cov: np.ndarray) -> np.ndarray:
    if not np.any(values > 0) or not float(values @ cov @ values) > 0:
        return np.zeros(len(values))
    rc = risk_contributions(values, cov)
    return rc / rc.sum()


def _note(method: str, s: dict[str, float], weight: float) -> str:
    days = int(s["window_days"])
    base = f"vol {s['vol']:.1%} over {days} days"
    if method == "performance":
        base = f"score {s['score']:.2f} ({days} days), floored at 0, bounded"
    elif method == "kelly":
        base = f"full Kelly {s['kelly_full']:.2f} ({days} days), fractional, capped"
    elif method == "hierarchical_risk_budget":
        base = f"HRP {s['hrp_weight']:.1%} of the budget, vol {s['vol']:.1%}"
    return f"{base}; risk share {s['risk_share']:.1%} -> allocation {weight:.2%}"
