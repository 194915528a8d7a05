"""The portfolio's side of the update path: its engine state loaded from the database,
the target weights of its strategies, the bar dates pending, and one chunk of applied dates
written back (snapshots, trades, rebalances and the book state).

The orchestration (the chunk loop, the risk manager, the lock) is ``operations.update``;
this module never imports the risk app. Every number the engine carries from bar to bar is
stored as the double it was (``FloatField``) or rebuilt from stored rows (the allocation
methods' trailing window from ``StrategySnapshot.unit_return``), so a chunk loaded from the
database continues exactly as the run that wrote it would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from portfolio import selectors
from portfolio.engine.allocation import AllocationParams
from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.checks import ConfigChecker
from portfolio.engine.config_schema import parse_allocation_params
from portfolio.engine.cycle import (
    DayResult,
    ManualRequest,
    OrderDecision,
    OrderOutcome,
    PortfolioState,
    StrategyState,
)
from portfolio.engine.signals import signal_from_config
from portfolio.engine.sizing import SizingStages, risk_config_from_dict, sizing_stages
from portfolio.models import (
    PendingOrder,
    Portfolio,
    PortfolioSnapshot,
    Position,
    RebalanceEvent,
    RebalanceRequest,
    Strategy,
    StrategySnapshot,
    Trade,
)
from quantsite.rows import rows_insert


@dataclass(frozen=True)
class TargetsSpec:
    """What a strategy's target weights depend on besides the prices: plain values, so
    a worker on another machine can compute them (``operations.fanout``)."""

    name: str
    signal_type: str
    parameters: dict
    risk_config: dict


def targets_spec(strategy: Strategy) -> TargetsSpec:
    return TargetsSpec(
        strategy.name, strategy.signal_type, strategy.parameters, strategy.risk_config
    )


def strategy_targets(strategy: Strategy, closes: pd.DataFrame, tradable: list[str]) -> pd.DataFrame:
    """Target weights (row t decided at close t) for one strategy: signal, then sizing."""
    return spec_targets(targets_spec(strategy), closes, tradable)


def spec_targets(spec: TargetsSpec, closes: pd.DataFrame, tradable: list[str]) -> pd.DataFrame:
    """``strategy_targets`` from plain values: the one function both the in-process path
    and the fan-out workers call."""
    return spec_sizing_stages(spec, closes, tradable).sized


def spec_sizing_stages(
    spec: TargetsSpec, closes: pd.DataFrame, tradable: list[str]
) -> SizingStages:
    """Every step from the closes to ``spec_targets`` (``sizing.sizing_stages``: the raw
    signal weights, the vol scaling, the caps), as the update path computes them: what the
    strategy page explains a position's size with."""
    where = f"strategy {spec.name}"
    signal = signal_from_config(spec.signal_type, spec.parameters, where=where)
    universe = closes[[t for t in tradable if t in closes.columns]]
    raw = signal.targets(universe)
    risk = risk_config_from_dict(spec.risk_config, where=f"{where}.risk_config")
    return sizing_stages(raw, universe, risk)


def state_load(portfolio: Portfolio, strategies: list[Strategy]) -> PortfolioState:
    """The engine state of a portfolio as the database holds it (the risk manager's
    multipliers are the risk app's: ``risk.services`` sets them on the state)."""
    mults = selectors.multipliers()
    positions: dict[int, dict[str, Holding]] = {s.id: {} for s in strategies}
    for p in Position.objects.filter(strategy__in=strategies).select_related("instrument"):
        positions[p.strategy_id][p.instrument.ticker] = Holding(
            p.quantity, p.avg_entry_price, p.entry_date
        )
    reviews = order_reviews(strategies)
    states = []
    for s in strategies:
        signal = signal_from_config(s.signal_type, s.parameters, where=f"strategy {s.name}")
        static = float(s.target_allocation)
        states.append(
            StrategyState(
                name=s.name,
                allocation=static if s.current_allocation is None else s.current_allocation,
                static_allocation=static,
                history_days=s.history_days,
                active=s.status == Strategy.Status.ACTIVE,
                frequency=signal.frequency,
                execution=strategy_execution(portfolio, s),
                book=Book(
                    cash=s.cash,
                    holdings=positions[s.id],
                    realized_pnl=s.realized_pnl,
                    multipliers=mults,
                ),
                pending=s.pending_targets,
                pending_date=s.pending_decided_on,
                nav=s.nav,
                peak_nav=s.peak_nav,
                last_equity=s.last_equity,
                approval_required=s.approval_required,
                reviews=reviews[s.id],
                retired=s.retired_at is not None,
            )
        )
    params = portfolio_allocation_params(portfolio, [s.name for s in strategies])
    state = PortfolioState(
        initial_capital=float(portfolio.initial_capital),
        leverage_target=float(portfolio.leverage_target),
        strategies=states,
        rebalance_trigger=portfolio.rebalance_trigger,
        rebalance_frequency=portfolio.rebalance_frequency,
        rebalance_threshold=float(portfolio.rebalance_threshold),
        last_date=portfolio.last_applied_date,
        peak_equity=portfolio.peak_equity,
        last_equity=portfolio.last_equity,
        allocation=params,
        rebalance_execution=portfolio.rebalance_method,
        rebalance_trading_day=portfolio.rebalance_trading_day,
        manual=_manual_request(portfolio),
    )
    if params.method != "static":
        _history_load(portfolio, strategies, state)
    return state


_REVIEWS = {
    PendingOrder.Status.PENDING: "pending",
    PendingOrder.Status.APPROVED: "approved",
    PendingOrder.Status.REJECTED: "rejected",
}


def order_reviews(strategies: list[Strategy]) -> dict[int, dict[date, str]]:
    """The engine's ``StrategyState.reviews`` per strategy id: the stored review of every
    held decision not resolved yet (pending, approved or rejected), by decided-on date."""
    out: dict[int, dict[date, str]] = {s.id: {} for s in strategies}
    rows = PendingOrder.objects.filter(
        strategy__in=strategies, status__in=list(_REVIEWS), resolved_on__isnull=True
    ).values_list("strategy_id", "decided_on", "status")
    for sid, decided_on, status in rows.order_by("strategy_id", "decided_on"):
        out[sid][decided_on] = _REVIEWS[status]
    return out


def reviews_unchanged(
    portfolio: Portfolio, strategies: list[Strategy], used: dict[int, dict[date, str]]
) -> bool:
    """Inside the chunk's transaction: whether the reviews the engine applied (``used``,
    as ``order_reviews`` gave them at the chunk's start) are still the stored ones. The
    portfolio row is locked first; a review (``portfolio.services.approvals``) locks it
    too, so a review lands either before this check (and the chunk is computed again) or
    after the commit (and finds its decision resolved)."""
    Portfolio.objects.select_for_update().filter(pk=portfolio.pk).values_list("pk").first()
    return order_reviews(strategies) == used


def portfolio_allocation_params(portfolio: Portfolio, names: list[str]) -> AllocationParams:
    """The stored allocation rule, validated as the YAML would be (the admin may edit it)."""
    checker = ConfigChecker(f"portfolio {portfolio.name!r}")
    return parse_allocation_params(
        checker,
        portfolio.allocation_method,
        portfolio.allocation_params,
        names,
        float(portfolio.leverage_target),
    )


def _manual_request(portfolio: Portfolio) -> ManualRequest | None:
    pending = list(
        RebalanceRequest.objects.filter(
            portfolio=portfolio, status=RebalanceRequest.Status.PENDING
        ).order_by("requested_at", "id")
    )
    if not pending:
        return None
    dates = [r.after_date for r in pending if r.after_date is not None]
    return ManualRequest(
        keys=tuple(r.request_key for r in pending),
        # the latest bar any of them has seen: none applies at a bar its maker had seen
        after_date=max(dates) if dates else None,
        execution=next((r.method for r in reversed(pending) if r.method), None),
    )


def _history_load(portfolio: Portfolio, strategies: list[Strategy], state: PortfolioState):
    """The trailing unit returns the allocation method reads, as the engine kept them."""
    dates, rows = selectors.unit_returns_tail(
        portfolio=portfolio, strategy_ids=[s.id for s in strategies], bars=state.history.maxlen
    )
    state.history.extend(rows)
    state.history_dates.extend(dates)


def strategy_execution(portfolio: Portfolio, s: Strategy) -> Execution:
    def pick(own, default):
        return float(default if own is None else own)

    return Execution(
        commission_bps=pick(s.commission_bps, portfolio.commission_bps),
        slippage_bps=pick(s.slippage_bps, portfolio.slippage_bps),
        whole_shares=portfolio.whole_shares,
        trade_band=pick(s.trade_band, portfolio.trade_band),
    )


def pending_dates(
    portfolio: Portfolio,
    closes: pd.DataFrame,
    tradable: list[str],
    as_of: date | None = None,
    start: date | None = None,
) -> list[date]:
    """Bar dates after ``last_applied_date`` (and from ``start``, up to ``as_of``) on which
    at least one tradable ticker has a close."""
    cols = [t for t in tradable if t in closes.columns]
    if not cols:
        return []
    has_bar = closes[cols].notna().any(axis=1)
    dates = [d.date() for d in closes.index[has_bar.to_numpy()]]
    last = portfolio.last_applied_date
    return [
        d
        for d in dates
        if (last is None or d > last)
        and (as_of is None or d <= as_of)
        and (start is None or d >= start)
    ]


@dataclass
class ChunkRows:
    """One chunk of applied dates as unsaved rows: snapshots and trades as dicts of field
    values for ``quantsite.rows.rows_insert`` (the risk manager fills the snapshots' risk
    fields before they are written; a strategy row carries its strategy's name under
    ``"name"``, which is no column), rebalance events as model instances (their keys link
    the manual requests they applied)."""

    portfolio_rows: list[dict] = field(default_factory=list)
    strategy_rows: list[dict] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    rebalances: list[RebalanceEvent] = field(default_factory=list)
    order_decisions: list[tuple[int, OrderDecision]] = field(default_factory=list)
    order_outcomes: list[tuple[int, OrderOutcome]] = field(default_factory=list)


def chunk_rows(
    portfolio: Portfolio,
    strategies: list[Strategy],
    results: list[DayResult],
    instruments: dict[str, int],
) -> ChunkRows:
    """The rows of one chunk of applied dates, built from the engine's day results."""
    ids = {s.name: s.id for s in strategies}
    out = ChunkRows()
    for r in results:
        out.strategy_rows.extend(_strategy_row(ids[d.name], r.date, d) for d in r.strategies)
        out.portfolio_rows.append(_portfolio_row(portfolio.id, r))
        out.trades.extend(_trade_row(ids[name], instruments, f) for name, f in r.fills)
        out.rebalances.extend(_rebalance_event(portfolio, r.date, rb) for rb in r.rebalances)
        out.order_decisions.extend((ids[d.name], d) for d in r.order_decisions)
        out.order_outcomes.extend((ids[o.name], o) for o in r.order_outcomes)
    return out


def _portfolio_row(portfolio_id: int, r: DayResult) -> dict:
    p = r.portfolio
    return {
        "portfolio_id": portfolio_id,
        "date": r.date,
        "equity": p.equity,
        "cash": p.cash,
        "long_exposure": p.long_exposure,
        "short_exposure": p.short_exposure,
        "net_exposure": p.net_exposure,
        "gross_exposure": p.gross_exposure,
        "leverage": p.leverage,
        "daily_return": p.daily_return,
        "drawdown": p.drawdown,
        "positions_gross": p.positions_gross,
        "positions_net": p.positions_net,
        "exposure_scale": r.exposure_scale,
    }


def _trade_row(strategy_id: int, instruments: dict[str, int], f) -> dict:
    return {
        "strategy_id": strategy_id,
        "instrument_id": instruments[f.ticker],
        "date": f.date,
        "side": f.side,
        "quantity": abs(f.quantity),
        "price": f.price,
        "value": f.value,
        "cost": f.cost,
        "realized_pnl": f.realized_pnl,
        "reason": f.reason,
        "detail": f.detail,
        "sizing": f.sizing,
    }


def _rebalance_event(portfolio: Portfolio, day: date, rb) -> RebalanceEvent:
    event = RebalanceEvent(
        portfolio=portfolio,
        date=day,
        trigger=rb.trigger,
        method=rb.method,
        weights_before=rb.weights_before,
        weights_after=rb.weights_after,
        capital_moved=rb.capital_moved,
        trades_count=rb.trades_count,
        cost=rb.cost,
        request_key=rb.request_keys[0] if rb.request_keys else None,
        allocation_method=portfolio.allocation_method,
        allocations_before=rb.allocations_before,
        allocations_after=rb.allocations_after,
        notes=rb.notes,
        stats=rb.stats,
    )
    event._request_keys = rb.request_keys
    return event


def _strategy_row(strategy_id: int, day: date, d) -> dict:
    return {
        "strategy_id": strategy_id,
        "name": d.name,
        "date": day,
        "equity": d.equity,
        "cash": d.cash,
        "long_exposure": d.long_exposure,
        "short_exposure": d.short_exposure,
        "leverage": d.leverage,
        "weight": d.weight,
        "daily_return": d.daily_return,
        "drawdown": d.drawdown,
        "positions_count": d.positions_count,
        "realized_pnl": d.realized_pnl,
        "unrealized_pnl": d.unrealized_pnl,
        "status": "active" if d.active else "paused",
        "allocation": d.allocation,
        "unit_return": d.unit_return,
        "flow": d.flow,
    }


def _orders_save(strategies: list[Strategy], rows: ChunkRows) -> None:
    """Write the chunk's held decisions and the outcomes of earlier ones: one
    ``PendingOrder`` per (strategy, decided-on date), created at the decision (or found,
    when its review was stored first) and resolved at the next bar."""
    decided = {(sid, d.decided_on): d for sid, d in rows.order_decisions}
    outcomes = {(sid, o.decided_on): o for sid, o in rows.order_outcomes}
    keys = sorted(set(decided) | set(outcomes))
    if not keys:
        return
    days = [k[1] for k in keys]
    existing = {
        (o.strategy_id, o.decided_on): o
        for o in PendingOrder.objects.filter(
            strategy__in=strategies, decided_on__gte=min(days), decided_on__lte=max(days)
        )
    }
    new, changed = [], []
    for key in keys:
        row = existing.get(key)
        if row is None:
            row = PendingOrder(strategy_id=key[0], decided_on=key[1])
            new.append(row)
        else:
            changed.append(row)
        if (d := decided.get(key)) is not None:
            row.targets = d.targets
            row.orders = [
                {"ticker": t, "side": "buy" if q > 0 else "sell", "quantity": abs(q), "price": c}
                for t, q, c in d.orders
            ]
        if (o := outcomes.get(key)) is not None:
            row.status, row.resolved_on = o.status, o.day
            row.cause, row.fills_count = o.cause, o.fills
    PendingOrder.objects.bulk_create(new, batch_size=1000)
    PendingOrder.objects.bulk_update(
        changed,
        ["targets", "orders", "status", "resolved_on", "cause", "fills_count"],
        batch_size=500,
    )


def chunk_save(
    portfolio: Portfolio,
    strategies: list[Strategy],
    state: PortfolioState,
    rows: ChunkRows,
    instruments: dict[str, int],
) -> None:
    """Write one chunk's rows and the resulting book state (inside the caller's
    transaction, which also holds the risk manager's writes)."""
    rows_insert(StrategySnapshot, rows.strategy_rows)
    rows_insert(PortfolioSnapshot, rows.portfolio_rows)
    rows_insert(Trade, rows.trades)
    RebalanceEvent.objects.bulk_create(rows.rebalances, batch_size=500)
    _requests_mark_applied(portfolio, rows.rebalances)
    _orders_save(strategies, rows)
    _state_save(portfolio, strategies, state, instruments)


def _requests_mark_applied(portfolio, events: list[RebalanceEvent]) -> None:
    """Link the manual requests a rebalance of this chunk carried out to its event."""
    for event in events:
        if event.trigger != RebalanceEvent.Trigger.MANUAL or event.pk is None:
            continue
        RebalanceRequest.objects.filter(
            portfolio=portfolio,
            status=RebalanceRequest.Status.PENDING,
            request_key__in=_event_keys(event),
        ).update(status=RebalanceRequest.Status.APPLIED, event=event)


def _event_keys(event: RebalanceEvent) -> list[str]:
    return list(getattr(event, "_request_keys", ()))


def _state_save(portfolio, strategies, state: PortfolioState, instruments) -> None:
    Position.objects.filter(strategy__in=strategies).delete()
    positions = []
    for s, st in zip(strategies, state.strategies, strict=True):
        s.cash, s.realized_pnl = st.book.cash, st.book.realized_pnl
        s.pending_targets, s.pending_decided_on = st.pending, st.pending_date
        s.nav, s.peak_nav, s.last_equity = st.nav, st.peak_nav, st.last_equity
        s.current_allocation, s.history_days = st.allocation, st.history_days
        s.save(
            update_fields=[
                "current_allocation",
                "history_days",
                "cash",
                "realized_pnl",
                "pending_targets",
                "pending_decided_on",
                "nav",
                "peak_nav",
                "last_equity",
            ]
        )
        for ticker, h in st.book.holdings.items():
            positions.append(
                Position(
                    strategy=s,
                    instrument_id=instruments[ticker],
                    quantity=h.quantity,
                    avg_entry_price=h.avg_price,
                    entry_date=h.entry_date,
                )
            )
    Position.objects.bulk_create(positions)
    portfolio.last_applied_date = state.last_date
    portfolio.peak_equity, portfolio.last_equity = state.peak_equity, state.last_equity
    portfolio.save(update_fields=["last_applied_date", "peak_equity", "last_equity"])
