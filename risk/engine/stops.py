"""Per-position stop-losses: the first part of the risk manager's step at close t.

Configured per strategy in ``risk_config.stop_loss`` (``portfolio.engine.sizing.StopLoss``:
``level`` f in (0, 1), ``trailing``, ``cooloff_bars`` N). Close-only data, so a stop is
checked at each close and fills at the close that breaches it (never at an intraday level):

* the stop price of a long is ``ref * (1 - f)``, of a short ``ref * (1 + f)``; ``ref`` is the
  book's average entry price (``Holding.avg_price``: an add re-averages it, a partial
  reduce leaves it as it is, a flip starts a new position at the fill price), or with
  ``trailing`` the best close since entry: a long's highest close, a short's lowest, from
  the close of the bar the position was entered (or first seen with a stop configured)
  through close t, so the stop only ever moves in the position's favour;
* a long breaches when ``close_t <= stop``, a short when ``close_t >= stop``; the whole
  position is closed at close t (a ``risk_action`` fill under the book's fill model), after
  the signal fills of t and before the limits are evaluated;
* each stop opens one ``StopEvent`` ("opened": one violation per (strategy, ticker)); the
  strategy may not re-enter the ticker for the next N bars (its target there is 0 at the
  fills of t+1 .. t+N: ``StrategyState.reentry_blocked``); the cool-off ends at the risk
  step of close t+N ("resolved"), so the signal may fill the ticker again at close t+N+1.
  With N = 0 the event opens and resolves at t and nothing is blocked. A bar is a bar the
  portfolio applies, whether or not the ticker traded on it.

Stops act on paused books too (a pause keeps positions, not their risk). Tickers without
a close at t are not checked. Books in the portfolio's order, tickers sorted: the state is
stored as JSON (``StopBook``), whose key order PostgreSQL's jsonb does not keep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date

from portfolio.engine.sizing import StopLoss
from portfolio.engine.state import DayContext, PortfolioState

REASON = "risk_action"


@dataclass
class StopTrack:
    """The best close of one held position since its entry (for trailing stops)."""

    side: float  # +1 long, -1 short
    entry_date: date
    best: float


@dataclass
class StopBook:
    """What the stops carry from bar to bar, keyed by (strategy name, ticker)."""

    tracks: dict[tuple[str, str], StopTrack] = field(default_factory=dict)
    cooloffs: dict[tuple[str, str], int] = field(default_factory=dict)  # bars still blocked

    def __bool__(self) -> bool:
        return bool(self.tracks or self.cooloffs)


@dataclass(frozen=True)
class StopEvent:
    kind: str  # opened | resolved
    strategy: str
    ticker: str
    day: date
    close: float
    stop: float  # the stop price (0 for a resolved event)
    message: str


def stop_price(stop: StopLoss, side: float, avg_price: float, best: float) -> float:
    """``ref * (1 - f)`` for a long, ``ref * (1 + f)`` for a short (module docstring)."""
    ref = best if stop.trailing else avg_price
    return ref * (1.0 - stop.level) if side > 0 else ref * (1.0 + stop.level)


def stops_step(
    state: PortfolioState, ctx: DayContext, book: StopBook, configs: dict[str, StopLoss]
) -> list[StopEvent]:
    """Count the cool-offs down, then check every held position of every book with a stop
    at close t, closing those that breach (module docstring). Returns the events."""
    events = _count_down(state, ctx, book)
    for s in state.strategies:
        stop = configs.get(s.name)
        for key in [k for k in sorted(book.tracks) if k[0] == s.name]:
            if stop is None or key[1] not in s.book.holdings:
                del book.tracks[key]
        if stop is None:
            continue
        for ticker, h in list(s.book.holdings.items()):
            close = ctx.today.get(ticker, math.nan)
            if not close > 0:
                continue
            side = 1.0 if h.quantity > 0 else -1.0
            key = (s.name, ticker)
            track = book.tracks.get(key)
            if track is None or track.side != side or track.entry_date != h.entry_date:
                track = book.tracks[key] = StopTrack(side, h.entry_date, close)
            track.best = max(track.best, close) if side > 0 else min(track.best, close)
            level = stop_price(stop, side, h.avg_price, track.best)
            if not (close <= level if side > 0 else close >= level):
                continue
            qty = h.quantity
            ref = "best close since entry" if stop.trailing else "average entry"
            ref_value = track.best if stop.trailing else h.avg_price
            fill = s.book.trade(ticker, -qty, close, ctx.day, s.execution, REASON)
            detail = f"stop-loss {level:g}: {stop.level * 100:g}% from {ref} {ref_value:g}"
            ctx.fills.append((s.name, replace(fill, detail=detail)))
            del book.tracks[key]
            msg = (
                f"stop-loss: closed {'long' if side > 0 else 'short'} {abs(qty):g} {ticker} "
                f"at close {close:g} (stop {level:g}, {stop.level * 100:g}% "
                f"{'below' if side > 0 else 'above'} {ref} {ref_value:g}); "
                f"no re-entry for {stop.cooloff_bars} bar(s)"
            )
            events.append(StopEvent("opened", s.name, ticker, ctx.day, close, level, msg))
            if stop.cooloff_bars > 0:
                book.cooloffs[key] = stop.cooloff_bars
            else:
                events.append(_resolved(s.name, ticker, ctx, "no cool-off"))
    reentry_blocks_apply(state, book)
    return events


def _count_down(state: PortfolioState, ctx: DayContext, book: StopBook) -> list[StopEvent]:
    events = []
    for key in _keys_in_book_order(state, book.cooloffs):
        book.cooloffs[key] -= 1
        if book.cooloffs[key] <= 0:
            del book.cooloffs[key]
            events.append(_resolved(*key, ctx, f"cool-off over; {key[1]} may be re-entered"))
    return events


def _resolved(name: str, ticker: str, ctx: DayContext, message: str) -> StopEvent:
    return StopEvent(
        "resolved", name, ticker, ctx.day, ctx.today.get(ticker, math.nan), 0.0, message
    )


def reentry_blocks_apply(state: PortfolioState, book: StopBook) -> None:
    """Each book's ``reentry_blocked``: the tickers still cooling off after a stop."""
    for s in state.strategies:
        s.reentry_blocked = {t for (name, t) in book.cooloffs if name == s.name}


def _keys_in_book_order(state: PortfolioState, keys) -> list[tuple[str, str]]:
    order = {s.name: i for i, s in enumerate(state.strategies)}
    return sorted(keys, key=lambda k: (order.get(k[0], len(order)), k[0], k[1]))


def stop_book_load(raw: dict | None) -> StopBook:
    """``StopBook`` from its JSON (see ``stop_book_dump``)."""
    raw = raw or {}
    book = StopBook()
    for name, ticker, side, entry, best in raw.get("tracks", []):
        book.tracks[(name, ticker)] = StopTrack(float(side), date.fromisoformat(entry), best)
    for name, ticker, left in raw.get("cooloffs", []):
        book.cooloffs[(name, ticker)] = int(left)
    return book


def stop_book_dump(book: StopBook) -> dict:
    """JSON lists (sorted keys) of doubles written as they are: round-trips exactly."""
    return {
        "tracks": [
            [n, t, tr.side, tr.entry_date.isoformat(), tr.best]
            for (n, t), tr in sorted(book.tracks.items())
        ],
        "cooloffs": [[n, t, left] for (n, t), left in sorted(book.cooloffs.items())],
    }
