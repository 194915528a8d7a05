"""A plain numpy next-close simulator of the benchmark workload (``bench.workload``): the
floor figure of the engine benchmark and the correctness reference for Quantsite's
backtest of it (final and daily portfolio equity equal to 1e-12, relative).

The rules, as Quantsite's daily cycle (``portfolio/engine/cycle.py``, ``book.py``,
``rebalance.py``) applies them with costs off, fractional quantities, no risk limits:

* momentum: ``score_t = close_t / close_{t-lookback} - 1``; the ``top_n`` finite scores
  (ties to the earlier column) get ``1/top_n``, the rest 0; decided at close t;
* bar 0: every book is funded with ``capital * a_i / sum(a)`` in cash; nothing trades;
* every later bar whose month differs from the previous bar's (the first bar of a
  month), at its close: (2) the portfolio rebalance moves cash so that every book holds
  ``E * a_i / sum(a)``: a book above its share hands over the surplus from its cash,
  first selling every position pro rata when its cash is short; the receivers get the
  pool pro rata to what they are owed; then (3) every book trades to the targets decided
  at the previous bar's close, ``q = w * E_i / close`` with ``E_i`` its equity after (2),
  sells first, then buys, each in ticker order;
* equity of a book = cash + sum of ``q * close`` over its positions in ticker order; the
  portfolio's = ``math.fsum`` of the books'.

The arithmetic follows the engine's operation by operation (the same sums in the same
order, a position's new quantity ``held + (target - held)``, the same 1e-9/1e-12 "too
small to trade" guard), which is why it agrees to rounding and not only to 1e-6.
Columns must be in ticker order (the engine's book iterates positions sorted by ticker).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def momentum_targets(values: np.ndarray, lookback: int, top_n: int) -> np.ndarray:
    """(n, k) closes -> (n, k) weights: ``1/top_n`` on the top ``top_n`` trailing returns."""
    n, k = values.shape
    score = np.full((n, k), np.nan)
    if n > lookback:
        score[lookback:] = values[lookback:] / values[:-lookback] - 1.0
    key = np.where(np.isfinite(score), -score, np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    rank = np.empty((n, k))
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(1.0, k + 1), (n, k)), axis=1)
    rank[~np.isfinite(score)] = np.nan
    with np.errstate(invalid="ignore"):
        return np.where(rank <= top_n, 1.0 / top_n, 0.0)


def _is_zero(x: float, scale: float) -> bool:
    return abs(x) <= max(1e-9, 1e-12 * abs(scale))


def _equities(cash: np.ndarray, qty: np.ndarray, prices: np.ndarray) -> np.ndarray:
    # np.cumsum adds left to right, as the book's loop over its positions does
    return cash + np.cumsum(qty * prices, axis=1)[:, -1]


def _raise_cash(cash, q: np.ndarray, amount: float, prices: np.ndarray) -> float:
    """Sell every position pro rata so cash grows by ``amount``; returns the new cash."""
    held = np.nonzero(q)[0]
    per_unit = 0.0
    for j in held:
        per_unit += abs(q[j]) * prices[j] * 1.0
    if amount <= 0 or per_unit <= 0:
        return cash
    f = min(1.0, amount / per_unit)
    for j in held:
        sell = -q[j] * f
        if not _is_zero(sell, q[j]):
            remaining = q[j] + sell
            q[j] = 0.0 if _is_zero(remaining, q[j]) else remaining
            cash -= sell * prices[j]
    return cash


def _move_capital(cash: np.ndarray, qty: np.ndarray, shares: np.ndarray, prices) -> None:
    """Step 2, ``cash`` execution (``rebalance.move_capital``), in place."""
    eq = _equities(cash, qty, prices)
    deltas = math.fsum(eq) * shares - eq
    pool = 0.0
    for i in range(len(cash)):
        give = -deltas[i]
        if give <= 0:
            continue
        shortfall = give - cash[i]
        if shortfall > 1e-12 * max(1.0, give):
            cash[i] = _raise_cash(cash[i], qty[i], shortfall, prices)
        give = min(give, max(cash[i], 0.0))
        cash[i] -= give
        pool += give
    wanted = math.fsum(d for d in deltas if d > 0)
    if wanted > 0:
        for i in range(len(cash)):
            if deltas[i] > 0:
                cash[i] += pool * deltas[i] / wanted


def _trade_to(cash: float, q: np.ndarray, weights: np.ndarray, prices: np.ndarray) -> float:
    """Step 3 for one book (``Book.rebalance_to``): returns the new cash, ``q`` in place."""
    equity = cash + np.cumsum(q * prices)[-1]
    orders = []
    for j in np.nonzero((weights != 0) | (q != 0))[0]:
        target = weights[j] * equity / (prices[j] * 1.0)
        delta = target - q[j]
        if not _is_zero(delta, max(abs(target), abs(q[j]))):
            orders.append((delta > 0, j, delta))
    for _, j, delta in sorted(orders):
        held = q[j]
        remaining = held + delta
        q[j] = 0.0 if held * delta < 0 and _is_zero(remaining, held) else remaining
        cash -= delta * prices[j]
    return cash


def simulate(
    closes: pd.DataFrame,
    targets: list[np.ndarray],
    allocations: list[float],
    initial_capital: float,
) -> np.ndarray:
    """Daily portfolio equity (one value per row of ``closes``). ``closes``: ticker-sorted
    columns, no NaN; ``targets``: one (n, k) weight array per book (row t decided at t)."""
    if list(closes.columns) != sorted(closes.columns):
        raise ValueError("closes: columns must be in ticker order")
    values = closes.to_numpy(dtype=float)
    n, k = values.shape
    total = math.fsum(allocations)
    shares = np.array([a / total for a in allocations])
    scale = total * 1.0  # the exposure scale T times the (unit) risk multiplier
    tw = np.stack(targets)  # (books, n, k)
    cash = np.array([0.0 + initial_capital * s for s in shares])
    qty = np.zeros((len(allocations), k))
    months = closes.index.year * 12 + closes.index.month
    out = np.empty(n)
    out[0] = math.fsum(cash)
    for t in range(1, n):
        prices = values[t]
        if months[t] != months[t - 1]:
            _move_capital(cash, qty, shares, prices)
            for i in range(len(cash)):
                cash[i] = _trade_to(cash[i], qty[i], tw[i, t - 1] * scale * 1.0, prices)
        out[t] = math.fsum(_equities(cash, qty, prices))
    return out


def workload_equity(closes: pd.DataFrame, lookbacks: list[int], top_n: int, capital: float):
    """The workload's daily portfolio equity: equal allocations, one book per lookback."""
    closes = closes[sorted(closes.columns)]
    values = closes.to_numpy(dtype=float)
    targets = [momentum_targets(values, lb, top_n) for lb in lookbacks]
    return simulate(closes, targets, [1.0 / len(lookbacks)] * len(lookbacks), capital)
