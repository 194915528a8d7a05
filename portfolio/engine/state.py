"""The engine state of a portfolio between bars, and the context of one bar.

Units: money in the quote currency (float64); allocations are fractions of portfolio
equity that sum to the portfolio's *exposure scale* ``T`` (the leverage target for the
normalized allocation methods). A book holds capital share ``allocation_i / T`` and trades
its targets scaled by ``T``, so its notional exposure is ``allocation_i`` of equity.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from portfolio.engine.allocation import AllocationParams
from portfolio.engine.book import Book, Execution, Fill

TRIGGERS = ("periodic", "threshold", "manual")
EXECUTIONS = ("cash", "proportional", "liquidate")


@dataclass
class StrategyState:
    name: str
    allocation: float  # in force now (the method's last decision)
    active: bool
    frequency: str
    execution: Execution
    book: Book
    pending: dict[str, float] | None = None
    pending_date: date | None = None
    nav: float = 1.0  # cumulative return index, flows excluded
    peak_nav: float = 1.0
    last_equity: float | None = None
    static_allocation: float | None = None  # the configured weight (None: ``allocation``)
    history_days: int = 0  # days since the book's first non-zero return
    risk_scale: float = 1.0  # the risk manager's multiplier on this book's exposure
    # Trade approval: the signal orders decided at a close fill at the next one only when
    # an operator approved them in between (``reviews``: decided-on date -> "approved" |
    # "rejected", the stored reviews of the decisions not yet resolved).
    approval_required: bool = False
    reviews: dict[date, str] = field(default_factory=dict)
    # Retired by an operator: never active again; its book is wound down at the next bar
    # (``rebalance.retire_books``) and its history kept.
    retired: bool = False
    # Tickers the strategy may not re-enter yet (a stop-loss's cool-off, set by the risk
    # manager: ``risk.engine.stops``): their targets count as 0 wherever targets trade.
    reentry_blocked: set[str] = field(default_factory=set)
    # The risk manager's caps on this book's holdings: ticker -> the most |quantity| it may
    # hold (units) while a ``reduce_position`` violation on that ticker is open
    # (``portfolio.engine.caps``; kept by ``risk.engine.position_caps``).
    position_caps: dict[str, float] = field(default_factory=dict)

    def tradable_targets(self, targets: dict[str, float]) -> dict[str, float]:
        """``targets`` without the tickers in ``reentry_blocked`` (a target of 0)."""
        if not self.reentry_blocked:
            return targets
        return {t: w for t, w in targets.items() if t not in self.reentry_blocked}

    @property
    def static(self) -> float:
        return self.allocation if self.static_allocation is None else self.static_allocation


@dataclass(frozen=True)
class ManualRequest:
    """Operator requests waiting for the next bar after ``after_date`` (coalesced into one
    rebalance; ``execution`` None means the portfolio's own method)."""

    keys: tuple[str, ...]
    after_date: date | None
    execution: str | None = None


@dataclass
class PortfolioState:
    initial_capital: float
    leverage_target: float
    strategies: list[StrategyState]
    rebalance_trigger: str = "periodic"  # periodic | threshold | manual
    rebalance_frequency: str = "monthly"
    rebalance_threshold: float = 0.05
    last_date: date | None = None
    peak_equity: float | None = None
    last_equity: float | None = None
    allocation: AllocationParams = field(default_factory=AllocationParams)
    rebalance_execution: str = "cash"  # cash | proportional | liquidate
    rebalance_trading_day: int = 1  # the Nth bar of the period
    manual: ManualRequest | None = None
    risk_scale: float = 1.0  # the risk manager's multiplier on every book's exposure
    # Trailing unit returns (strategy return / exposure scale), oldest first; the
    # allocation methods' input. ``history_dates`` runs alongside.
    history: deque = field(default_factory=lambda: deque(maxlen=1))
    history_dates: deque = field(default_factory=lambda: deque(maxlen=1))

    def __post_init__(self) -> None:
        keep = max(self.allocation.lookback, 2)
        if self.history.maxlen != keep:
            self.history = deque(self.history, maxlen=keep)
            self.history_dates = deque(self.history_dates, maxlen=keep)

    @property
    def exposure_scale(self) -> float:
        """``T = sum of allocations in force``."""
        return math.fsum(s.allocation for s in self.strategies)

    def returns_window(self) -> np.ndarray:
        """Trailing unit returns, ``len(history) x n_strategies``."""
        if not self.history:
            return np.zeros((0, len(self.strategies)))
        return np.array(self.history, dtype=float)


@dataclass(frozen=True)
class RebalanceRecord:
    trigger: str
    weights_before: dict[str, float]  # shares of portfolio equity before
    weights_after: dict[str, float]
    capital_moved: float
    trades_count: int
    cost: float
    method: str = "cash"  # the execution: cash | proportional | liquidate
    allocations_before: dict[str, float] = field(default_factory=dict)
    allocations_after: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    stats: dict[str, dict[str, float]] = field(default_factory=dict)
    request_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class OrderDecision:
    """The signal orders an approval-gated strategy decided at the close of ``decided_on``
    and that now wait for an operator: its target weights and the orders they would make
    if filled at that close (``(ticker, signed quantity, close)``, fill order; the fill at
    the next close is sized again from that close, as every signal fill is)."""

    name: str
    decided_on: date
    targets: dict[str, float]
    orders: tuple[tuple[str, float, float], ...]


@dataclass(frozen=True)
class OrderOutcome:
    """What became of an approval-gated decision at the next bar ``day``: ``filled``
    (approved and traded, ``fills`` fills), ``rejected``, or ``expired`` (not approved
    before the bar, or approved but not tradable then: ``cause``)."""

    name: str
    decided_on: date
    day: date
    status: str  # filled | rejected | expired
    cause: str
    fills: int = 0


@dataclass
class DayContext:
    """One bar being applied: its closes (NaN: no bar), marks (last close), the cash each
    book received (+) or gave (-) today, and what was traded and rebalanced so far."""

    day: date
    today: dict[str, float]
    marks: dict[str, float]
    flows: dict[str, float]
    fills: list[tuple[str, Fill]] = field(default_factory=list)
    rebalances: list[RebalanceRecord] = field(default_factory=list)
    order_outcomes: list[OrderOutcome] = field(default_factory=list)
