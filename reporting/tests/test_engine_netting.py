"""net_by_ticker on a hand-checked frame (no database)."""

from __future__ import annotations

import pandas as pd

from reporting.engine.netting import NETTED_COLUMNS, net_by_ticker


def test_books_net_by_ticker_largest_net_first():
    # X: A long 10, B short 5 at 100 -> net qty 5, net 500, gross 1000 + 500 = 1500, 2 books.
    # Y: B long 1 at 700 -> net 700 (largest |net|, so first), gross 700, 1 book.
    # Z: A long 2, B short 2 at 50 -> net 0, gross 200 (last).
    positions = pd.DataFrame(
        {
            "strategy": ["A", "B", "B", "A", "B"],
            "ticker": ["X", "X", "Y", "Z", "Z"],
            "quantity": [10.0, -5.0, 1.0, 2.0, -2.0],
            "value": [1000.0, -500.0, 700.0, 100.0, -100.0],
            "unrealized_pnl": [10.0, -3.0, 1.0, 0.5, 0.5],
        }
    )
    netted = net_by_ticker(positions)
    assert list(netted.index) == ["Y", "X", "Z"] and tuple(netted.columns) == NETTED_COLUMNS
    assert netted.loc["X"].tolist() == [5.0, 500.0, 1500.0, 7.0, 2]
    assert netted.loc["Z"].tolist() == [0.0, 0.0, 200.0, 1.0, 2]


def test_no_positions_net_to_an_empty_frame():
    empty = pd.DataFrame(columns=["strategy", "ticker", "quantity", "value", "unrealized_pnl"])
    assert net_by_ticker(empty).empty
