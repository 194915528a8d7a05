"""Positions netted by ticker across books, as the overview table and the API show them.

Shapes and units. In: the long frame ``reporting.selectors.position_frame`` gives, one
row per (book, ticker) with columns strategy, ticker, quantity (signed units) and value
(signed money, quantity x close x multiplier), unrealized_pnl (money). Out: one row per
ticker, index ``ticker``, sorted by |net| descending then ticker.
"""

from __future__ import annotations

import pandas as pd

NETTED_COLUMNS = ("net_quantity", "net", "gross", "unrealized_pnl", "books")


def net_by_ticker(positions: pd.DataFrame) -> pd.DataFrame:
    """Per ticker: ``net_quantity`` = sum of the books' signed quantities, ``net`` = sum
    of their signed values, ``gross`` = sum of |value| (what the books hold between them;
    gross >= |net|), ``unrealized_pnl`` = sum, ``books`` = number of books holding it.
    Example: A long 10 and B short 5 of X at 100 -> net_quantity 5, net 500, gross 1500,
    books 2. Largest |net| first; an empty frame gives an empty result."""
    if positions.empty:
        return pd.DataFrame(columns=list(NETTED_COLUMNS), index=pd.Index([], name="ticker"))
    frame = positions.assign(abs_value=positions["value"].abs())
    by_ticker = frame.groupby("ticker").agg(
        net_quantity=("quantity", "sum"),
        net=("value", "sum"),
        gross=("abs_value", "sum"),
        unrealized_pnl=("unrealized_pnl", "sum"),
        books=("strategy", "nunique"),
    )
    order = sorted(by_ticker.index, key=lambda t: (-abs(by_ticker.at[t, "net"]), t))
    return by_ticker.loc[order]
