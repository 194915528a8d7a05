"""Position caps on a book's target weights (the risk manager's ``reduce_position``).

``StrategyState.position_caps`` maps a ticker to the most units (``|quantity|``) the book
may hold of it. A target weight ``w`` on a book of equity ``E`` (at ``closes``, as
``Book.rebalance_to`` sizes it) means ``w * E / (close * multiplier)`` units; a capped
ticker's weight is clipped to ``sign(w) * cap * close * multiplier / E``, so the trade
lands on at most the cap (float rounding aside) on either side. The cap is in units, not
weight: the reduced size stays put as prices move, and a rise that pushes it back over the
limit is cut again by the risk manager. A ticker without a close today, or a book without
positive equity, is left to ``rebalance_to`` (it holds what it has).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from portfolio.engine.state import StrategyState


def capped_weights(
    s: StrategyState, weights: Mapping[str, float], closes: Mapping[str, float]
) -> Mapping[str, float]:
    """``weights`` with the book's capped tickers clipped to their caps (module docstring);
    ``weights`` itself when the book has no cap."""
    if not s.position_caps:
        return weights
    equity = s.book.equity(closes)
    out = dict(weights)
    for ticker in sorted(s.position_caps):
        close = closes.get(ticker, math.nan)
        w = out.get(ticker, 0.0)
        if not close > 0 or not equity > 0 or w == 0.0:
            continue
        most = s.position_caps[ticker] * close * s.book.multiplier(ticker) / equity
        if abs(w) > most:
            out[ticker] = math.copysign(most, w)
    return out
