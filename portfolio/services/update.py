"""The one update path: ``run_update`` (live) and ``portfolio_apply`` (live and backtest).

``portfolio_apply`` loads a portfolio's books from the database, asks the engine to apply
every bar date after ``last_applied_date`` (``portfolio.engine.cycle``), and writes the
results back in chunks of whole dates, each chunk one transaction holding the snapshots,
trades, rebalances *and* the book state. So it is

* idempotent: a date at or before ``last_applied_date`` is never applied again;
* resumable: a killed run leaves the last committed chunk intact, and the next run
  continues from its ``last_applied_date``;
* single-runner: ``run_update`` holds the ``update`` lock (``AlreadyRunning`` otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portfolio import selectors
from portfolio.engine.allocation import AllocationParams
from portfolio.engine.book import Book, Execution, Holding
from portfolio.engine.checks import ConfigChecker
from portfolio.engine.config_schema import parse_allocation_params
from portfolio.engine.cycle import (
    DayResult,
    ManualRequest,
    PortfolioState,
    StrategyState,
    apply_dates,
)
from portfolio.engine.signals import signal_from_config
from portfolio.engine.sizing import risk_config_from_dict, size_targets
from portfolio.models import (
    Instrument,
    Portfolio,
    PortfolioSnapshot,
    Position,
    RebalanceEvent,
    RebalanceRequest,
    Strategy,
    StrategySnapshot,
    Trade,
    UpdateRun,
)
from portfolio.services.locks import AlreadyRunning, lock_heartbeat, lock_hold
from portfolio.services.prices import prices_load, provider_default

log = logging.getLogger(__name__)
UPDATE_LOCK = "update"


class RiskSession(Protocol):
    """One chunk's risk manager (the risk app provides it; portfolio never imports risk).

    ``hook`` is the daily cycle's step 4; ``decorate`` fills the risk fields of the
    chunk's unsaved snapshot rows; ``persist`` writes violations and the risk state inside
    the chunk's transaction (alerts are sent after the commit)."""

    def hook(self, state: PortfolioState, ctx) -> None: ...

    def decorate(self, portfolio_rows: list, strategy_rows: list) -> None: ...

    def persist(self, state: PortfolioState) -> None: ...


# (portfolio, its strategies, the last bar date this run applies) -> session or None
RiskSessionFactory = Callable[[Portfolio, list[Strategy], date], RiskSession | None]
_risk_managers: list[RiskSessionFactory] = []


def risk_manager_register(factory: RiskSessionFactory) -> None:
    """Called by the risk app at startup (``risk.apps``): every chunk of every portfolio
    is then applied with its session's hook."""
    if factory not in _risk_managers:
        _risk_managers.append(factory)


@dataclass(frozen=True)
class ApplyResult:
    dates_applied: int
    first_date: date | None
    last_date: date | None
    seconds_engine: float
    seconds_write: float


@dataclass(frozen=True)
class UpdateResult:
    status: str  # success | skipped | failed
    message: str
    run_id: int | None
    bars_added: int = 0
    dates_applied: int = 0


def run_update(
    *,
    as_of: date | None = None,
    trigger: str = "command",
    load_prices: bool = True,
) -> UpdateResult:
    """Bring prices up to date, then apply every new bar date (up to ``as_of``) to every
    live portfolio. A second concurrent call returns status ``skipped`` ("already
    running") and changes nothing."""
    try:
        with lock_hold(UPDATE_LOCK, owner=f"run_update ({trigger})") as lock:
            return _run_update_locked(lock, as_of=as_of, trigger=trigger, load_prices=load_prices)
    except AlreadyRunning as exc:
        log.info("update skipped: %s", exc)
        return UpdateResult("skipped", str(exc), None)


def _run_update_locked(lock, *, as_of, trigger, load_prices) -> UpdateResult:
    run = UpdateRun.objects.create(trigger=trigger, as_of=as_of)
    try:
        t0 = time.perf_counter()
        bars_added = 0
        if load_prices:
            replay = settings.QUANTSITE_REPLAY_BARS_PER_UPDATE or None
            loaded = prices_load(provider=provider_default(), until=as_of, max_new_dates=replay)
            bars_added = loaded.bars_added
        run.bars_loaded, run.seconds_prices = bars_added, time.perf_counter() - t0
        closes = selectors.price_frame(end=as_of)
        total = 0
        for portfolio in selectors.live_portfolios():
            run.portfolio = portfolio
            result = portfolio_apply(
                portfolio=portfolio,
                closes=closes,
                as_of=as_of,
                on_chunk=lambda: lock_heartbeat(lock),
            )
            total += result.dates_applied
            run.first_date = run.first_date or result.first_date
            run.last_date = result.last_date or run.last_date
            run.seconds_engine += result.seconds_engine
            run.seconds_write += result.seconds_write
        run.dates_applied, run.status = total, UpdateRun.Status.SUCCESS
        message = f"added {bars_added} bars, applied {total} bar dates"
        return UpdateResult("success", message, run.pk, bars_added, total)
    except Exception as exc:
        run.status, run.error = UpdateRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.finished_at = timezone.now()
        run.save()


def strategy_targets(strategy: Strategy, closes: pd.DataFrame, tradable: list[str]) -> pd.DataFrame:
    """Target weights (row t decided at close t) for one strategy: signal, then sizing."""
    where = f"strategy {strategy.name}"
    signal = signal_from_config(strategy.signal_type, strategy.parameters, where=where)
    universe = closes[[t for t in tradable if t in closes.columns]]
    raw = signal.targets(universe)
    risk = risk_config_from_dict(strategy.risk_config, where=f"{where}.risk_config")
    return size_targets(raw, universe, risk)


def state_load(portfolio: Portfolio, strategies: list[Strategy]) -> PortfolioState:
    """The engine state of a portfolio as the database holds it."""
    mults = selectors.multipliers()
    positions: dict[int, dict[str, Holding]] = {s.id: {} for s in strategies}
    for p in Position.objects.filter(strategy__in=strategies).select_related("instrument"):
        positions[p.strategy_id][p.instrument.ticker] = Holding(
            float(p.quantity), float(p.avg_entry_price), p.entry_date
        )
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
                risk_scale=s.risk_scale,
                active=s.status == Strategy.Status.ACTIVE,
                frequency=signal.frequency,
                execution=strategy_execution(portfolio, s),
                book=Book(
                    cash=float(s.cash),
                    holdings=positions[s.id],
                    realized_pnl=float(s.realized_pnl),
                    multipliers=mults,
                ),
                pending=s.pending_targets,
                pending_date=s.pending_decided_on,
                nav=s.nav,
                peak_nav=s.peak_nav,
                last_equity=None if s.last_equity is None else float(s.last_equity),
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
        peak_equity=None if portfolio.peak_equity is None else float(portfolio.peak_equity),
        last_equity=None if portfolio.last_equity is None else float(portfolio.last_equity),
        allocation=params,
        rebalance_execution=portfolio.rebalance_method,
        rebalance_trading_day=portfolio.rebalance_trading_day,
        manual=_manual_request(portfolio),
        risk_scale=portfolio.risk_scale,
    )
    if params.method != "static":
        _history_load(portfolio, strategies, state)
    return state


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
    """The trailing unit returns the allocation method reads, as the engine kept them:
    every applied bar after the funding day (``StrategySnapshot.unit_return``)."""
    keep = state.history.maxlen
    dates = list(
        PortfolioSnapshot.objects.filter(portfolio=portfolio)
        .order_by("-date")
        .values_list("date", flat=True)[: keep + 1]
    )
    if len(dates) <= keep:  # the funding day is among them: it has no return
        dates = dates[:-1]
    dates = dates[:keep][::-1]
    if not dates:
        return
    units: dict[tuple[date, int], float] = {
        (d, sid): u
        for d, sid, u in StrategySnapshot.objects.filter(
            strategy__in=strategies, date__gte=dates[0]
        ).values_list("date", "strategy_id", "unit_return")
    }
    for d in dates:
        state.history.append([units.get((d, s.id), 0.0) for s in strategies])
        state.history_dates.append(d)


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


def portfolio_apply(
    *,
    portfolio: Portfolio,
    closes: pd.DataFrame,
    as_of: date | None = None,
    start: date | None = None,
    on_chunk: Callable[[], None] | None = None,
    chunk_dates: int | None = None,
) -> ApplyResult:
    """Apply every pending bar date of ``portfolio`` using ``closes`` (the wide close
    frame, history included for the signals' lookbacks)."""
    tradable = [t for t in selectors.tradable_tickers() if t in closes.columns]
    dates = pending_dates(portfolio, closes, tradable, as_of, start)
    if not dates:
        return ApplyResult(0, None, None, 0.0, 0.0)
    t0 = time.perf_counter()
    history = closes.loc[: pd.Timestamp(dates[-1])]
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    targets = {s.name: strategy_targets(s, history, tradable) for s in strategies}
    frame = history[tradable]
    engine_s, write_s = time.perf_counter() - t0, 0.0
    chunk = chunk_dates or settings.QUANTSITE_DATES_PER_COMMIT
    instruments = dict(Instrument.objects.values_list("ticker", "id"))
    for k in range(0, len(dates), chunk):
        part = dates[k : k + chunk]
        t1 = time.perf_counter()
        state = state_load(portfolio, strategies)
        sessions = [s for s in (f(portfolio, strategies, dates[-1]) for f in _risk_managers) if s]
        hook = sessions[0].hook if sessions else None
        results = apply_dates(state, frame, targets, part, risk_hook=hook)
        t2 = time.perf_counter()
        _write_chunk(portfolio, strategies, state, results, instruments, sessions)
        engine_s += t2 - t1
        write_s += time.perf_counter() - t2
        if on_chunk is not None:
            on_chunk()
    return ApplyResult(len(dates), dates[0], dates[-1], engine_s, write_s)


def _write_chunk(
    portfolio,
    strategies,
    state: PortfolioState,
    results: list[DayResult],
    instruments: dict[str, int],
    sessions: list[RiskSession] = (),
) -> None:
    """Persist one chunk of applied dates and the resulting book state, atomically."""
    by_name = {s.name: s for s in strategies}
    strategy_rows, portfolio_rows, trades, rebalances = [], [], [], []
    for r in results:
        for d in r.strategies:
            strategy_rows.append(
                StrategySnapshot(
                    strategy=by_name[d.name],
                    date=r.date,
                    equity=d.equity,
                    cash=d.cash,
                    long_exposure=d.long_exposure,
                    short_exposure=d.short_exposure,
                    leverage=d.leverage,
                    weight=d.weight,
                    daily_return=d.daily_return,
                    drawdown=d.drawdown,
                    positions_count=d.positions_count,
                    realized_pnl=d.realized_pnl,
                    unrealized_pnl=d.unrealized_pnl,
                    status="active" if d.active else "paused",
                    allocation=d.allocation,
                    unit_return=d.unit_return,
                )
            )
        p = r.portfolio
        portfolio_rows.append(
            PortfolioSnapshot(
                portfolio=portfolio,
                date=r.date,
                equity=p.equity,
                cash=p.cash,
                long_exposure=p.long_exposure,
                short_exposure=p.short_exposure,
                net_exposure=p.net_exposure,
                gross_exposure=p.gross_exposure,
                leverage=p.leverage,
                daily_return=p.daily_return,
                drawdown=p.drawdown,
                positions_gross=p.positions_gross,
                positions_net=p.positions_net,
                exposure_scale=r.exposure_scale,
            )
        )
        for name, f in r.fills:
            trades.append(
                Trade(
                    strategy=by_name[name],
                    instrument_id=instruments[f.ticker],
                    date=f.date,
                    side=f.side,
                    quantity=abs(f.quantity),
                    price=f.price,
                    value=f.value,
                    cost=f.cost,
                    realized_pnl=f.realized_pnl,
                    reason=f.reason,
                )
            )
        for rb in r.rebalances:
            event = RebalanceEvent(
                portfolio=portfolio,
                date=r.date,
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
            rebalances.append(event)
    for session in sessions:
        session.decorate(portfolio_rows, strategy_rows)
    with transaction.atomic():
        StrategySnapshot.objects.bulk_create(strategy_rows, batch_size=2000)
        PortfolioSnapshot.objects.bulk_create(portfolio_rows, batch_size=2000)
        Trade.objects.bulk_create(trades, batch_size=2000)
        RebalanceEvent.objects.bulk_create(rebalances, batch_size=500)
        _requests_mark_applied(portfolio, rebalances)
        _state_save(portfolio, strategies, state, instruments)
        for session in sessions:
            session.persist(state)
    from portfolio.notify import notify_update  # push only after the commit

    transaction.on_commit(lambda: notify_update(portfolio.pk, results[-1].date))


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
        s.risk_scale = st.risk_scale
        s.save(
            update_fields=[
                "current_allocation",
                "history_days",
                "risk_scale",
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
    portfolio.risk_scale = state.risk_scale
    portfolio.save(update_fields=["last_applied_date", "peak_equity", "last_equity", "risk_scale"])
