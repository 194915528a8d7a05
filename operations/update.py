"""The one update path: ``run_update`` (live) and ``portfolio_apply`` (live and backtest).

``portfolio_apply`` loads a portfolio's books (``portfolio.services.books``) and its risk
manager (``risk.services``), asks the engine to apply every bar date after
``last_applied_date`` (``portfolio.engine.cycle``, with the risk manager as step 4), and
writes the results back in chunks of whole dates, each chunk one transaction holding the
snapshots, trades, rebalances, violations, the book state and the risk book. So it is

* idempotent: a date at or before ``last_applied_date`` is never applied again;
* resumable: a killed run leaves the last committed chunk intact, and the next run
  continues from its ``last_applied_date``;
* single-runner: ``run_update`` holds the ``update`` lock (``AlreadyRunning`` otherwise);
* never left "running": the run heartbeats (``portfolio.services.runs``) and the next
  update, Update now and /readyz mark a run whose process died failed; a run that fails
  on a lost database connection records its failure (and releases its lock) on a new one;
* the same whatever the chunking: every chunk starts from what the database holds, and
  everything the engine carries across bars is stored exactly or rebuilt from stored rows,
  so one replay, any ``QUANTSITE_DATES_PER_COMMIT`` and one bar per run leave identical
  rows (``operations.digest``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations.fanout import strategies_targets
from portfolio import selectors
from portfolio.engine.cycle import apply_dates
from portfolio.models import Instrument, Portfolio, UpdateRun
from portfolio.notify import notify_update
from portfolio.services.books import (
    chunk_rows,
    chunk_save,
    pending_dates,
    reviews_unchanged,
    state_load,
)
from portfolio.services.live import state_version_bump
from portfolio.services.locks import AlreadyRunning, db_retry_once, lock_hold
from portfolio.services.prices import prices_load, provider_default
from portfolio.services.runs import run_beat, run_claim, run_heartbeat, runs_reap
from reporting.pages.warm import live_pages_warm
from risk.services import risk_session_open

log = logging.getLogger(__name__)
UPDATE_LOCK = "update"
REVIEW_ATTEMPTS = 3  # a chunk is computed again at most this often for a landed review


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
    run_id: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    warm_pages: bool = True,
) -> UpdateResult:
    """Bring prices up to date, then apply every new bar date (up to ``as_of``) to every
    live portfolio. A second concurrent call returns status ``skipped`` ("already
    running") and changes nothing. ``run_id``: carry out that queued run (Update now)
    instead of creating a new row; its ``as_of`` and ``trigger`` win. ``progress``: see
    ``portfolio_apply`` (called per portfolio). When it applied bars and ``warm_pages``,
    the pages' cached part is built for the new state before it returns, after the lock
    is released (``reporting.pages.warm``).

    Dead runs (process gone, stale heartbeat) are marked failed first (``runs_reap``)."""
    runs_reap()
    queued = None
    if run_id is not None:
        queued = UpdateRun.objects.filter(pk=run_id, status=UpdateRun.Status.QUEUED).first()
        if queued is None:
            return UpdateResult("skipped", f"run {run_id} is no longer queued", run_id)
        as_of, trigger = queued.as_of, queued.trigger
    try:
        with lock_hold(UPDATE_LOCK, owner=f"run_update ({trigger})") as lock:
            run = queued or UpdateRun(trigger=trigger, as_of=as_of)
            result = _run_update_locked(lock, run, load_prices=load_prices, progress=progress)
    except AlreadyRunning as exc:
        log.info("update skipped: %s", exc)
        if queued is not None:
            UpdateRun.objects.filter(pk=queued.pk, status=UpdateRun.Status.QUEUED).update(
                status=UpdateRun.Status.SKIPPED, error=str(exc), finished_at=timezone.now()
            )
        return UpdateResult("skipped", str(exc), queued.pk if queued else None)
    if result.dates_applied and warm_pages:
        live_pages_warm()
    return result


def _run_update_locked(lock, run: UpdateRun, *, load_prices: bool, progress) -> UpdateResult:
    as_of = run.as_of
    run_claim(run)
    try:
        with run_heartbeat(run, lock):
            return _run_apply(run, lock, as_of=as_of, load_prices=load_prices, progress=progress)
    except Exception as exc:
        run.status, run.error = UpdateRun.Status.FAILED, f"{type(exc).__name__}: {exc}"
        raise
    finally:
        run.finished_at = timezone.now()
        # after a lost connection, on a new one: the run must not stay "running"
        db_retry_once(run.save)


def _run_apply(run: UpdateRun, lock, *, as_of, load_prices, progress) -> UpdateResult:
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
            on_chunk=lambda: run_beat(run, lock),
            progress=progress,
        )
        total += result.dates_applied
        run.first_date = run.first_date or result.first_date
        run.last_date = result.last_date or run.last_date
        run.seconds_engine += result.seconds_engine
        run.seconds_write += result.seconds_write
    run.dates_applied, run.status = total, UpdateRun.Status.SUCCESS
    message = f"added {bars_added} bars, applied {total} bar dates"
    return UpdateResult("success", message, run.pk, bars_added, total)


def portfolio_apply(
    *,
    portfolio: Portfolio,
    closes: pd.DataFrame,
    as_of: date | None = None,
    start: date | None = None,
    on_chunk: Callable[[], None] | None = None,
    chunk_dates: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ApplyResult:
    """Apply every pending bar date of ``portfolio`` using ``closes`` (the wide close
    frame, history included for the signals' lookbacks). ``progress(done, total)``, when
    given, is called with 0 once the signals are computed, then after each committed
    chunk with the dates committed so far (``quantsite.progress`` writes it; nothing is
    printed here)."""
    tradable = [t for t in selectors.tradable_tickers() if t in closes.columns]
    dates = pending_dates(portfolio, closes, tradable, as_of, start)
    if not dates:
        return ApplyResult(0, None, None, 0.0, 0.0)
    t0 = time.perf_counter()
    history = closes.loc[: pd.Timestamp(dates[-1])]
    strategies = list(portfolio.strategies.order_by("position_order", "id"))
    targets = strategies_targets(strategies, history, tradable)
    frame = history[tradable]
    engine_s, write_s = time.perf_counter() - t0, 0.0
    chunk = chunk_dates or settings.QUANTSITE_DATES_PER_COMMIT
    instruments = dict(Instrument.objects.values_list("ticker", "id"))
    if progress is not None:  # after the signals: the rate is that of the dates' work
        progress(0, len(dates))
    for k in range(0, len(dates), chunk):
        part = dates[k : k + chunk]
        for attempt in range(1, REVIEW_ATTEMPTS + 1):
            t1 = time.perf_counter()
            state = state_load(portfolio, strategies)
            reviews = {
                s.id: dict(st.reviews) for s, st in zip(strategies, state.strategies, strict=True)
            }
            gated = any(st.approval_required or st.reviews for st in state.strategies)
            risk = risk_session_open(portfolio, strategies, dates[-1], closes=frame)
            risk.state_apply(state)
            results = apply_dates(state, frame, targets, part, risk_hook=risk.hook)
            t2 = time.perf_counter()
            rows = chunk_rows(portfolio, strategies, results, instruments)
            risk.decorate(rows.portfolio_rows, rows.strategy_rows)
            engine_s += t2 - t1
            with transaction.atomic():
                # An operator's review that landed while the chunk was computed: compute
                # it again with the review, as a run started after it would.
                if gated and not reviews_unchanged(portfolio, strategies, reviews):
                    if attempt == REVIEW_ATTEMPTS:
                        raise RuntimeError("order reviews kept changing during the update")
                    continue
                chunk_save(portfolio, strategies, state, rows, instruments)
                risk.persist(state)
                last = results[-1].date
                version = state_version_bump(portfolio=portfolio, as_of=last)
                transaction.on_commit(
                    lambda last=last, v=version: notify_update(portfolio.pk, last, v)
                )
            break
        write_s += time.perf_counter() - t2
        if on_chunk is not None:
            on_chunk()
        if progress is not None:
            progress(k + len(part), len(dates))
    return ApplyResult(len(dates), dates[0], dates[-1], engine_s, write_s)
