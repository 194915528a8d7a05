"""Round trips from fills: which fill closed which lot, how long the lot was held and
what it cost.

Shapes and units. ``fills`` is a ``pd.DataFrame`` with one row per fill, in execution
order (date, then id), and columns strategy, ticker, date (datetime64), side ("buy" or
"sell"), quantity (> 0, units) and realized_pnl (account currency; the book records the
P&L on the fill that closes), optionally price (the fill price incl. slippage, account
currency per unit; without it, ``brief`` frames, entry_price is NaN). Each (strategy,
ticker) is an independent position that starts flat. Each open lot keeps its own entry
date and price; a partly closed lot keeps both for what remains.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pandas as pd

FILL_COLUMNS = ("strategy", "ticker", "date", "side", "quantity", "realized_pnl")
ROUND_TRIP_COLUMNS = (
    "strategy",
    "ticker",
    "side",
    "entry_date",
    "first_entry_date",
    "exit_date",
    "quantity",
    "entry_price",
    "realized_pnl",
    "hold_days",
)
RELATIVE_TOLERANCE = 1e-9  # fractional quantities: a remainder this small is "flat"


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """One row per closing fill (a fill that reduces the position's absolute size),
    matched first-in first-out against the open lots of its strategy and ticker.

    side: +1 when the fill closed long lots, -1 when it covered short lots (the sign of
    the lots it closed, not of another fill on the same date); quantity: the part of the
    fill that closed lots (a fill that flips long to short closes the long and opens a
    short lot with the rest); realized_pnl: the fill's realized P&L as the book recorded
    it; hold_days: the quantity-weighted mean of (exit date - lot entry date) in calendar
    days over the lot parts it closed; entry_date: exit_date - round(hold_days) days, so
    ``performance.trade_stats`` measures the same hold (a synthetic date, after the
    first lot was bought when several were); first_entry_date: the entry date of the
    earliest lot it closed (where an excursion starts); entry_price: the cost basis of
    what it closed, sum(q_i x p_i) / sum(q_i) over the closed lot parts (q_i units,
    p_i their fill price), NaN without a price column. Opening fills produce no row.
    Fills are matched in the order given, which must be the execution order: a sell and
    a buy of one ticker on one date are taken in that order (never re-sorted here;
    ``selectors.trade_frame`` reads by date, then id)."""
    qty = _checked_quantities(fills)
    # Plain Python numbers in the loop: it runs once per fill (~90k for the demo).
    days = pd.to_datetime(fills["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    signed = np.where(fills["side"].to_numpy() == "buy", qty, -qty).tolist()
    pnl = fills["realized_pnl"].to_numpy(dtype=float).tolist()
    if "price" in fills.columns:
        prices = fills["price"].to_numpy(dtype=float).tolist()
    else:
        prices = [float("nan")] * len(fills)
    keys = zip(fills["strategy"].tolist(), fills["ticker"].tolist(), strict=True)
    books: dict[tuple, deque] = {}
    rows = []
    for i, (key, day) in enumerate(zip(keys, days.tolist(), strict=True)):
        lots = books.setdefault(key, deque())  # [signed quantity, entry day, price]
        first = lots[0][1] if lots else day
        closed, held, cost = _close_lots(lots, signed[i], day, prices[i])
        if closed > 0:
            # only a sell closes long lots and only a buy covers short ones
            side = 1 if signed[i] < 0 else -1
            rows.append((*key, side, first, day, closed, cost / closed, pnl[i], held / closed))
    return _trip_frame(rows)


def _checked_quantities(fills: pd.DataFrame) -> np.ndarray:
    """The fills' quantities as floats, after checking the columns, sides and sizes."""
    missing = [c for c in FILL_COLUMNS if c not in fills.columns]
    if missing:
        raise ValueError(f"fills lacks columns {missing}; needs {list(FILL_COLUMNS)}")
    if not set(fills["side"].unique()) <= {"buy", "sell"}:
        raise ValueError("side must be 'buy' or 'sell'")
    qty = fills["quantity"].to_numpy(dtype=float)
    if not (np.isfinite(qty).all() and (qty > 0).all()):
        raise ValueError("quantity must be finite and > 0")
    return qty


def _trip_frame(rows: list[tuple]) -> pd.DataFrame:
    """``ROUND_TRIP_COLUMNS`` from the loop's tuples (day numbers become dates)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "strategy",
            "ticker",
            "side",
            "first_day",
            "exit_day",
            "quantity",
            "entry_price",
            "realized_pnl",
            "hold",
        ],
    )
    frame["side"] = frame["side"].astype(np.int64)
    frame["entry_price"] = frame["entry_price"].astype(float)
    frame["exit_date"] = pd.to_datetime(frame["exit_day"].to_numpy(dtype="int64"), unit="D")
    frame["first_entry_date"] = pd.to_datetime(frame["first_day"].to_numpy(dtype="int64"), unit="D")
    frame["hold_days"] = frame["hold"].astype(float)
    frame["entry_date"] = frame["exit_date"] - pd.to_timedelta(frame["hold_days"].round(), unit="D")
    return frame[list(ROUND_TRIP_COLUMNS)]


def _close_lots(lots: deque, quantity: float, day: int, price: float) -> tuple[float, ...]:
    """Apply one signed fill at ``price`` to ``lots`` (FIFO). Returns (quantity closed,
    sum of closed quantity x days held, sum of closed quantity x lot price); the
    unmatched rest opens a lot dated ``day`` at ``price``. A partly closed lot keeps its
    date and price."""
    closed = held = cost = 0.0
    rest = quantity
    while lots and rest and (lots[0][0] > 0) != (rest > 0):
        lot = lots[0]
        take = min(abs(lot[0]), abs(rest))
        step = take if rest > 0 else -take
        closed += take
        held += take * (day - lot[1])
        cost += take * lot[2]
        lot[0] += step
        rest -= step
        tolerance = RELATIVE_TOLERANCE * max(take, 1.0)
        if abs(lot[0]) <= tolerance:
            lots.popleft()
        if abs(rest) <= tolerance:
            rest = 0.0
    if rest:
        lots.append([rest, day, price])
    return closed, held, cost
