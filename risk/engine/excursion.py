"""Open-position figures stored on every snapshot: max position weight and the maximum
adverse excursion (MAE) of the positions open at the close (pure numpy/pandas).

Inputs are a book at close t *after* every fill of t (signal, rebalance and risk-manager
fills; step 5 of the cycle does not trade): its signed holdings with their average entry
price and entry date (``portfolio.engine.book.Holding``), the marks of t (last close per
ticker), the contract multipliers and the book's equity at those marks.

* **max position weight** of a book at t: ``max_k |q_k * mark_k * m_k| / E`` over the
  book's tickers k (``risk.engine.exposure.strategy_exposure``'s largest position weight,
  reused as is): 0.0 for a flat book at any equity; NaN (stored NULL, shown as a dash)
  when the book holds a position and ``E <= 0``, where the ratio means nothing.
* **position MAE** at t of a position with side ``s`` (+1 long, -1 short), average entry
  price ``A`` (the book's, fill prices with slippage, re-averaged on an add, unchanged by a
  partial close) and entry date ``e`` (set when the position opens or flips sign, kept by
  adds and partial closes): ``max(0, -s * (W - A) / A)`` with ``W`` the worst close of the
  ticker dated ``e..t`` inclusive, the lowest for a long and the highest for a short. A
  fraction of ``A`` (>= 0; a short's may exceed 1); the same formula as the per-trade
  ``risk.engine.metrics.max_adverse_excursion`` applied to the position open now, against
  its current break-even price. Example: long 10 bought at 100, closes 100, 90, then 10
  more bought at 90: ``A = 95``, ``W = 90``, MAE ``5/95``.
* **strategy open MAE** at t: the largest position MAE among the book's open positions;
  0.0 for a flat book.
* **portfolio open MAE** at t: the largest position MAE among *every book's* open
  positions (the largest strategy open MAE), 0.0 when no book holds anything. Positions
  are not netted across books: a netted position has no entry price or entry date when
  books hold the same ticker on opposite sides or entered it on different dates, and
  netting would hide a book's losing entry behind another book's winning one. The figure
  is checkable from the strategy snapshots of the same close (their maximum).

Nothing here is carried from bar to bar: ``W`` is read again each close from the stored
closes (the price history the engine marks with) and the stored entry date and price, so
a chunk of one bar and a chunk of 5,000 store the same bits (min and max are exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from risk.engine.exposure import strategy_exposure


def position_adverse_excursion(quantity: float, avg_price: float, worst_close: float) -> float:
    """``max(0, -s * (W - A) / A)``, ``s`` the sign of ``quantity`` (module docstring)."""
    if quantity == 0:
        raise ValueError("a flat position has no adverse excursion")
    if not (math.isfinite(avg_price) and avg_price > 0):
        raise ValueError(f"average entry price must be a positive number, got {avg_price!r}")
    side = 1.0 if quantity > 0 else -1.0
    return max(0.0, -side * (worst_close - avg_price) / avg_price) + 0.0


class CloseHistory:
    """The closes the engine marks with, for "worst close since entry" look-ups.

    ``closes``: DataFrame on an ascending DatetimeIndex, one float column per ticker, NaN
    where a ticker has no bar (``portfolio.selectors.price_frame``).

    A look-up remembers its answer per (ticker, side, entry date) with the bar it reached,
    so the next close's look-up of the same position reads only the bars after it: a
    position held n bars costs O(n) over its life, not O(n^2). The extremum of the longer
    span is the extremum of the remembered one and the new bars, exactly (min and max
    round nothing), so the answer is the same bits as a fresh read."""

    def __init__(self, closes: pd.DataFrame) -> None:
        if not closes.index.is_monotonic_increasing:
            raise ValueError("closes must be sorted by date, ascending")
        self._days = closes.index.to_numpy(dtype="datetime64[ns]")
        self._columns = {t: closes[t].to_numpy(dtype=float) for t in closes.columns}
        self._stops = {d.date(): i + 1 for i, d in enumerate(closes.index)}
        self._worst: dict[tuple[str, int, date], tuple[int, float | None]] = {}

    def _stop(self, day: date) -> int:
        stop = self._stops.get(day)
        if stop is None:
            stop = int(self._days.searchsorted(np.datetime64(day, "ns"), side="right"))
        return stop

    def worst_close(self, ticker: str, side: int, entry_date: date, day: date) -> float:
        """The lowest (``side`` +1) or highest (-1) close of ``ticker`` dated
        ``entry_date..day`` inclusive; ValueError when it has none in that span."""
        if ticker not in self._columns:
            raise ValueError(f"no closes for held ticker {ticker!r}")
        stop, key = self._stop(day), (ticker, side, entry_date)
        done, worst = self._worst.get(key, (None, None))
        if done is None or done > stop:
            done = int(self._days.searchsorted(np.datetime64(entry_date, "ns"), side="left"))
            worst = None
        column, pick = self._columns[ticker], min if side > 0 else max
        if stop - done == 1:  # the next close of a remembered position: no array work
            new = float(column[done])
            if new == new:  # not NaN
                worst = new if worst is None else pick(worst, new)
        elif stop > done:
            span = column[done:stop]
            span = span[~np.isnan(span)]
            if span.size:
                new = float(span.min() if side > 0 else span.max())
                worst = new if worst is None else pick(worst, new)
        self._worst[key] = (max(done, stop), worst)
        if worst is None:
            raise ValueError(f"no close of {ticker!r} between {entry_date} and {day}")
        return worst


@dataclass(frozen=True)
class OpenPosition:
    """A held position as the book has it: signed quantity (negative = short)."""

    ticker: str
    quantity: float
    avg_price: float
    entry_date: date


@dataclass(frozen=True)
class BookFigures:
    """One book's open-position figures at a close (module docstring)."""

    max_position_weight: float  # max |q * mark * m| / E; NaN when held and E <= 0
    open_mae: float  # largest position MAE, fraction of the average entry price
    worst_ticker: str | None  # the position with that MAE (first in ticker order on a tie)


def book_figures(
    positions: Sequence[OpenPosition],
    marks: Mapping[str, float],
    equity: float,
    multipliers: Mapping[str, float],
    history: CloseHistory,
    day: date,
) -> BookFigures:
    """Max position weight and open MAE of one book at close ``day``."""
    positions = sorted((p for p in positions if p.quantity != 0), key=lambda p: p.ticker)
    exposure = strategy_exposure(
        {p.ticker: p.quantity for p in positions}, marks, equity, multipliers
    )
    worst, worst_ticker = 0.0, None
    for p in positions:
        side = 1 if p.quantity > 0 else -1
        w = history.worst_close(p.ticker, side, p.entry_date, day)
        mae = position_adverse_excursion(p.quantity, p.avg_price, w)
        if worst_ticker is None or mae > worst:
            worst, worst_ticker = mae, p.ticker
    return BookFigures(exposure.largest_position_weight, worst, worst_ticker)


def portfolio_open_mae(books: Sequence[BookFigures]) -> float:
    """The largest open MAE over ``books``; 0.0 when no book holds a position."""
    return max((f.open_mae for f in books if f.worst_ticker is not None), default=0.0)
