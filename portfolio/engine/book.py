"""The paper-trading book of one strategy: cash, signed positions, fills and P&L.

Units: prices in the instrument's quote currency per unit; ``value = quantity * price *
multiplier``; money in float64. Quantities are signed (negative = short).

Fill model (documented once, here):

* fill price = close * (1 + s) for a buy, close * (1 - s) for a sell, s = slippage_bps/1e4;
* commission = |quantity| * fill price * multiplier * commission_bps/1e4;
* cash -= signed quantity * fill price * multiplier + commission;
* ``Fill.cost`` = commission + slippage money (|quantity| * close * multiplier * s), i.e.
  everything the fill lost against trading at the close;
* realized P&L of the part of a fill that reduces a position is
  ``(fill price - average entry) * closed quantity * multiplier`` for a long (reversed for
  a short): slippage is in it (it is in the fill price), commission is not (it is in
  ``cost``). A fill that flips the sign closes the old position and opens the rest at the
  fill price; the entry date resets.

Equity = cash + sum(quantity * mark * multiplier). Shorts leave their sale proceeds in cash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Execution:
    """How a strategy's orders fill. ``trade_band``: skip re-sizing a held position when the
    target weight differs from the current one by no more than this (opens, closes and flips
    always trade). The band never leaves the book's gross exposure above its targets' gross:
    when the skipped reductions would, the largest are made until it does not
    (``Book.rebalance_to``)."""

    commission_bps: float = 0.0
    slippage_bps: float = 0.0
    whole_shares: bool = False
    trade_band: float = 0.0


@dataclass
class Holding:
    quantity: float
    avg_price: float
    entry_date: date


@dataclass(frozen=True)
class Fill:
    ticker: str
    date: date
    quantity: float  # signed: + buy, - sell
    price: float  # fill price, slippage included
    value: float  # |quantity| * price * multiplier
    commission: float
    cost: float  # commission + slippage money
    realized_pnl: float
    reason: str
    detail: str = ""  # what a risk fill acted on (a stop-loss: its level and reference)
    sizing: Mapping[str, float] | None = None  # a signal fill's inputs (cycle.sizing_detail)

    @property
    def side(self) -> str:
        return "buy" if self.quantity > 0 else "sell"


@dataclass
class Book:
    cash: float = 0.0
    holdings: dict[str, Holding] = field(default_factory=dict)
    realized_pnl: float = 0.0
    multipliers: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._holdings_sort()

    def _holdings_sort(self) -> None:
        """Keep ``holdings`` in ticker order, in place. Every sum and every sequence of
        fills over a book's positions then runs in the same order whether the book was
        built up bar by bar in memory or loaded from the database (where insertion order
        is lost), so float results are bit for bit the same (DESIGN "Live equals
        replay")."""
        if list(self.holdings) != sorted(self.holdings):
            items = sorted(self.holdings.items())
            self.holdings.clear()
            self.holdings.update(items)

    def multiplier(self, ticker: str) -> float:
        return self.multipliers.get(ticker, 1.0)

    def exposures(self, marks: Mapping[str, float]) -> tuple[float, float]:
        """(long market value, absolute short market value) at ``marks``."""
        long_mv = short_mv = 0.0
        for ticker, h in self.holdings.items():
            mv = h.quantity * marks[ticker] * self.multiplier(ticker)
            if mv >= 0:
                long_mv += mv
            else:
                short_mv -= mv
        return long_mv, short_mv

    def equity(self, marks: Mapping[str, float]) -> float:
        long_mv, short_mv = self.exposures(marks)
        return self.cash + long_mv - short_mv

    def unrealized_pnl(self, marks: Mapping[str, float]) -> float:
        return sum(
            (marks[t] - h.avg_price) * h.quantity * self.multiplier(t)
            for t, h in self.holdings.items()
        )

    def trade(
        self, ticker: str, quantity: float, close: float, day: date, ex: Execution, reason: str
    ) -> Fill:
        """Fill ``quantity`` (signed) of ``ticker`` at ``close`` under the fill model."""
        mult = self.multiplier(ticker)
        slip = ex.slippage_bps / 1e4
        price = close * (1.0 + slip) if quantity > 0 else close * (1.0 - slip)
        notional = abs(quantity) * price * mult
        commission = notional * ex.commission_bps / 1e4
        slippage_money = abs(quantity) * close * slip * mult
        self.cash -= quantity * price * mult + commission
        realized = self._apply_to_holding(ticker, quantity, price, day)
        self.realized_pnl += realized
        return Fill(
            ticker=ticker,
            date=day,
            quantity=quantity,
            price=price,
            value=notional,
            commission=commission,
            cost=commission + slippage_money,
            realized_pnl=realized,
            reason=reason,
        )

    def _apply_to_holding(self, ticker: str, qty: float, price: float, day: date) -> float:
        h = self.holdings.get(ticker)
        if h is None:
            self.holdings[ticker] = Holding(qty, price, day)
            self._holdings_sort()
            return 0.0
        mult = self.multiplier(ticker)
        if h.quantity * qty > 0:  # adding to the position: average the entry price
            total = h.quantity + qty
            h.avg_price = (h.quantity * h.avg_price + qty * price) / total
            h.quantity = total
            return 0.0
        closed = min(abs(qty), abs(h.quantity))
        direction = 1.0 if h.quantity > 0 else -1.0
        realized = (price - h.avg_price) * closed * direction * mult
        remaining = h.quantity + qty
        if _is_zero(remaining, h.quantity):
            del self.holdings[ticker]
        elif remaining * h.quantity > 0:
            h.quantity = remaining
        else:  # flipped: the rest opens a new position at the fill price
            self.holdings[ticker] = Holding(remaining, price, day)
        return realized

    def target_quantity(
        self, weight: float, equity: float, close: float, ticker: str, whole_shares: bool
    ) -> float:
        qty = weight * equity / (close * self.multiplier(ticker))
        return float(math.trunc(qty)) if whole_shares else qty

    def rebalance_to(
        self,
        weights: Mapping[str, float],
        closes: Mapping[str, float],
        day: date,
        ex: Execution,
        reason: str,
        equity: float | None = None,
    ) -> list[Fill]:
        """Trade toward ``weights`` (fractions of ``equity``, default the book's equity at
        ``closes``). Tickers without a close today are left as they are. Sells fill before
        buys so cash is freed first."""
        orders = self.orders_to(weights, closes, ex, equity)
        return [self.trade(t, d, c, day, ex, reason) for t, d, c in orders]

    def orders_to(
        self,
        weights: Mapping[str, float],
        closes: Mapping[str, float],
        ex: Execution,
        equity: float | None = None,
    ) -> list[tuple[str, float, float]]:
        """The orders ``rebalance_to`` would fill, as ``(ticker, signed quantity, close)``
        in fill order, without trading (the trade band applied as it describes)."""
        if equity is None:
            equity = self.equity(closes)
        orders: list[tuple[str, float, float]] = []
        trims: list[tuple[str, float, float, float]] = []  # banded shrinks, money value
        gross_target = gross_after = 0.0  # in money, tickers we can trade today
        for ticker in sorted(set(weights) | set(self.holdings)):
            close = closes.get(ticker, math.nan)
            if not close > 0:  # no bar today (NaN) or bad: hold what we have
                continue
            target = self.target_quantity(
                weights.get(ticker, 0.0), equity, close, ticker, ex.whole_shares
            )
            held = self.holdings[ticker].quantity if ticker in self.holdings else 0.0
            delta = target - held
            unit = close * self.multiplier(ticker)
            gross_target += abs(target) * unit
            if _is_zero(delta, max(abs(target), abs(held))):
                gross_after += abs(held) * unit
                continue
            if ex.trade_band > 0 and held != 0 and target != 0 and held * target > 0:
                if abs(delta) * unit / equity <= ex.trade_band:
                    gross_after += abs(held) * unit
                    if abs(target) < abs(held):
                        trims.append((ticker, delta, close, abs(delta) * unit))
                    continue
            gross_after += abs(target) * unit
            orders.append((ticker, delta, close))
        # The band must never hold the book above the gross exposure its targets ask for
        # (the leverage cap is in the targets): make the skipped trims, largest first, until
        # it does not.
        for ticker, delta, close, value in sorted(trims, key=lambda o: (-o[3], o[0])):
            if gross_after <= gross_target * (1 + 1e-12):
                break
            orders.append((ticker, delta, close))
            gross_after -= value
        orders.sort(key=lambda o: (o[1] > 0, o[0]))  # sells (False) first, then by ticker
        return orders

    def raise_cash(
        self, amount: float, closes: Mapping[str, float], day: date, ex: Execution, reason: str
    ) -> list[Fill]:
        """Sell every position pro rata (the same fraction f of each) so that cash grows by
        ``amount`` net of costs; f is capped at 1 (close everything)."""
        per_unit = 0.0  # cash raised by f = 1
        slip, comm = ex.slippage_bps / 1e4, ex.commission_bps / 1e4
        tradable = {t: h for t, h in sorted(self.holdings.items()) if closes.get(t, math.nan) > 0}
        for t, h in tradable.items():
            mv = abs(h.quantity) * closes[t] * self.multiplier(t)
            per_unit += (
                mv * (1 - slip) * (1 - comm) if h.quantity > 0 else -mv * (1 + slip) * (1 + comm)
            )
        if amount <= 0 or per_unit <= 0:
            return []
        f = min(1.0, amount / per_unit)
        fills = []
        for t, h in list(tradable.items()):
            qty = -h.quantity * f
            if ex.whole_shares:
                qty = math.copysign(math.ceil(abs(qty) - 1e-9), qty)
            if not _is_zero(qty, h.quantity):
                fills.append(self.trade(t, qty, closes[t], day, ex, reason))
        return fills


def negligible(x: float, scale: float) -> bool:
    """A quantity too small to trade (or store): see ``_is_zero``."""
    return _is_zero(x, scale)


def _is_zero(x: float, scale: float) -> bool:
    """Float noise guard for quantities: |x| at most 1e-9 units, or 1e-12 of the position.
    (Stored quantities keep 10 decimals, so anything smaller could not be stored anyway.)"""
    return abs(x) <= max(1e-9, 1e-12 * abs(scale))
