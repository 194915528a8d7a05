"""Leverage, position counts, netting across strategies and concentration (pure Python).

Shapes and units. Quantities are signed (negative = short), in units of the instrument;
a position's market value is ``quantity * price * multiplier`` in money (multiplier 1.0
when a ticker is not listed, as in ``portfolio.engine.book``). Exposures are money;
leverage, weights and concentrations are fractions of equity (1.5 = 150 %).

* strategy leverage = gross exposure / strategy equity, gross = sum |market value|;
* portfolio netting: a ticker's net quantity is the sum of the strategies' signed
  quantities (A long 10, B short 5 -> net long 5). Two gross figures exist and both are
  given: ``gross_exposure`` = sum over strategies of |position value| (15 in that example,
  what the strategies hold between them) and ``netted_gross_exposure`` = sum over tickers
  of |net value| (5: what the portfolio holds after netting; this is what
  ``portfolio.engine.cycle`` records as the portfolio's gross exposure and leverage).
* zero or negative equity: a ratio to equity is 0.0 when the numerator is 0 (an empty
  book has no leverage at any equity) and NaN otherwise (undefined; a limit check must
  treat NaN as a breach, since ``NaN > threshold`` is False).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

# A net quantity this small relative to the quantities that made it is rounding residue
# of offsetting fractional positions, not a position.
_FLAT_RELATIVE = 1e-12


def equity_fraction(value: float, equity: float) -> float:
    """``value / equity``; 0.0 when value == 0, NaN when equity <= 0 and value != 0."""
    if value == 0.0:
        return 0.0
    if not equity > 0.0:
        return math.nan
    return value / equity


def leverage(gross_exposure: float, equity: float) -> float:
    """Leverage ``gross_exposure / equity`` (money / money); 0.0 for an empty book, NaN
    for a book with exposure and equity <= 0."""
    return equity_fraction(gross_exposure, equity)


def _market_value(ticker: str, quantity: float, prices, multipliers) -> float:
    try:
        price = float(prices[ticker])
    except KeyError:
        raise ValueError(f"no price for held ticker {ticker!r}") from None
    if not (math.isfinite(price) and price > 0.0):
        raise ValueError(f"price for {ticker!r} must be positive and finite, got {price!r}")
    return quantity * price * float(multipliers.get(ticker, 1.0))


@dataclass(frozen=True)
class StrategyExposure:
    """One strategy's book: money exposures and fractions of its equity."""

    gross_exposure: float  # sum |market value|
    net_exposure: float  # sum market value (signed)
    leverage: float  # gross_exposure / equity
    position_count: int  # tickers with a non-zero quantity
    largest_position_weight: float  # max |market value| / equity


def strategy_exposure(
    quantities: Mapping[str, float],
    prices: Mapping[str, float],
    equity: float,
    multipliers: Mapping[str, float] | None = None,
) -> StrategyExposure:
    """Exposure of one strategy: gross = sum |q p m|, net = sum q p m, leverage = gross /
    equity, position count = #(q != 0), largest position weight = max |q p m| / equity.

    ``quantities``: ticker -> signed quantity; ``prices``: ticker -> close (must cover
    every held ticker); ``equity``: the strategy's equity (money). See the module note for
    equity <= 0."""
    multipliers = multipliers or {}
    values = [
        _market_value(t, float(q), prices, multipliers) for t, q in quantities.items() if q != 0
    ]
    gross = math.fsum(abs(v) for v in values)
    largest = max((abs(v) for v in values), default=0.0)
    return StrategyExposure(
        gross_exposure=gross,
        net_exposure=math.fsum(values),
        leverage=leverage(gross, equity),
        position_count=len(values),
        largest_position_weight=equity_fraction(largest, equity),
    )


@dataclass(frozen=True)
class NettedPositions:
    """Positions of all strategies netted by ticker (money unless stated)."""

    net_quantity: dict[str, float]  # ticker -> net signed quantity (flat tickers omitted)
    net_value: dict[str, float]  # ticker -> net signed market value
    gross_exposure: float  # sum over strategies and tickers of |market value|
    netted_gross_exposure: float  # sum over tickers of |net market value|
    net_exposure: float  # sum over tickers of net market value (long - short)
    gross_count: int  # (strategy, ticker) positions with a non-zero quantity
    net_count: int  # tickers whose net quantity is not flat


def net_positions(
    positions: Mapping[str, Mapping[str, float]],
    prices: Mapping[str, float],
    multipliers: Mapping[str, float] | None = None,
) -> NettedPositions:
    """Net the strategies' signed quantities by ticker.

    ``positions``: strategy -> ticker -> signed quantity. Net quantity of a ticker =
    sum over strategies of its quantities; it is flat (omitted, not counted) when
    |net| <= 1e-12 * sum |quantities|. Market value = quantity * price * multiplier.
    Example: A long 10, B short 5 of X at 100 -> net quantity 5, net value 500,
    gross exposure 1500, netted gross 500, gross count 2, net count 1."""
    multipliers = multipliers or {}
    net_q: dict[str, float] = {}
    abs_q: dict[str, float] = {}
    gross_values = []
    gross_count = 0
    for book in positions.values():
        for ticker, quantity in book.items():
            if quantity == 0:
                continue
            gross_count += 1
            gross_values.append(abs(_market_value(ticker, quantity, prices, multipliers)))
            net_q[ticker] = net_q.get(ticker, 0.0) + quantity
            abs_q[ticker] = abs_q.get(ticker, 0.0) + abs(quantity)
    net_q = {t: q for t, q in net_q.items() if abs(q) > _FLAT_RELATIVE * abs_q[t]}
    net_v = {t: _market_value(t, q, prices, multipliers) for t, q in net_q.items()}
    return NettedPositions(
        net_quantity=net_q,
        net_value=net_v,
        gross_exposure=math.fsum(gross_values),
        netted_gross_exposure=math.fsum(abs(v) for v in net_v.values()),
        net_exposure=math.fsum(net_v.values()),
        gross_count=gross_count,
        net_count=len(net_q),
    )


@dataclass(frozen=True)
class PortfolioLeverage:
    """Portfolio leverage figures, fractions of portfolio equity."""

    gross: float  # gross_exposure / equity: sum of |strategy positions|
    netted_gross: float  # netted_gross_exposure / equity: sum of |net positions|
    net: float  # net_exposure / equity: signed, long minus short


def portfolio_leverage(netted: NettedPositions, equity: float) -> PortfolioLeverage:
    """Gross, netted-gross and net leverage of the netted book over portfolio ``equity``
    (money). See the module note for equity <= 0."""
    return PortfolioLeverage(
        gross=leverage(netted.gross_exposure, equity),
        netted_gross=leverage(netted.netted_gross_exposure, equity),
        net=equity_fraction(netted.net_exposure, equity),
    )


def ticker_concentration(netted: NettedPositions, equity: float) -> dict[str, float]:
    """Concentration per ticker across strategies: ``|net market value| / equity``,
    largest first. ``equity``: portfolio equity (money)."""
    weights = {t: equity_fraction(abs(v), equity) for t, v in netted.net_value.items()}
    return dict(sorted(weights.items(), key=lambda item: (-item[1], item[0])))


def top_concentration(concentration: Mapping[str, float], n: int = 5) -> float:
    """Sum of the ``n`` largest per-ticker concentrations (top-5 by default); all of them
    when fewer than n tickers are held; 0.0 when none are. NaN if any is NaN."""
    values = list(concentration.values())
    if any(math.isnan(v) for v in values):
        return math.nan
    return math.fsum(sorted(values, reverse=True)[:n])
