"""Frames every page derives the same way from the selectors' output."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import pandas as pd
from django.conf import settings
from django.core.cache import cache

from portfolio.models import Portfolio, Strategy
from reporting import selectors


@dataclass(frozen=True)
class History:
    """The portfolio's stored history, loaded in 3 queries, 1 when cached (``history_load``): its
    snapshots, its strategies and their snapshots (long, and as dates x strategies wide
    frames)."""

    portfolio: Portfolio
    snapshots: pd.DataFrame
    strategies: list[Strategy]
    strategy_snapshots: pd.DataFrame

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.strategies]

    @cached_property
    def returns(self) -> pd.Series:
        """Portfolio daily returns for statistics, the funding day excluded
        (``selectors.portfolio_return_series``)."""
        return selectors.portfolio_return_series(self.snapshots)

    @cached_property
    def book_returns(self) -> pd.DataFrame:
        """Each book's flow-free daily returns, dates x strategies on the dates of
        ``returns``; NaN on and before a book's funding day
        (``selectors.strategy_return_frame``)."""
        wide = selectors.strategy_return_frame(self.strategy_snapshots, self.names)
        return wide.reindex(self.returns.index)

    def wide(self, column: str) -> pd.DataFrame:
        """A strategy snapshot column as dates x strategies on the portfolio's dates (for
        returns to compute statistics with, use ``book_returns``)."""
        wide = selectors.strategy_wide_frame(self.strategy_snapshots, column, self.names)
        return wide.reindex(self.snapshots.index)

    def strategy_returns(self, name: str) -> pd.Series:
        """A book's flow-free daily returns after its funding day."""
        return self.book_returns[name].dropna()

    @property
    def latest(self) -> pd.Series | None:
        return None if self.snapshots.empty else self.snapshots.iloc[-1]

    @property
    def as_of(self):
        return None if self.snapshots.empty else self.snapshots.index[-1].date()


HISTORY_CACHE_SECONDS = 3600


def history_load(*, portfolio: Portfolio) -> History:
    """The portfolio's history; the snapshot frames come from the default cache when the
    committed state has not moved since they were read (``_snapshot_frames``)."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    snapshots, strategy_snapshots = _snapshot_frames(portfolio, strategies)
    return History(
        portfolio=portfolio,
        snapshots=snapshots,
        strategies=strategies,
        strategy_snapshots=strategy_snapshots,
    )


def _snapshot_frames(portfolio: Portfolio, strategies: list[Strategy]):
    """Both snapshot frames (``selectors.portfolio_history_frame``,
    ``strategy_history_frame``), cached (``settings.QUANTSITE_HISTORY_CACHE``) under one
    key per portfolio with the stamp of the state they were read at: the portfolio's
    committed ``StateVersion`` (version and commit time) and its strategies' ids.
    Snapshots are written only in the update path's chunk transaction, which bumps that
    version (a strategy deleted takes its snapshots with it: the ids change), so a stamp
    that still matches means the rows are unchanged. The stamp is read before the rows,
    so an entry is never older than its stamp. Nothing is cached before the first commit
    (no version row). One key per portfolio: a new state overwrites the old entry."""
    stamp = None
    if settings.QUANTSITE_HISTORY_CACHE:
        version = selectors.state_stamp_get(portfolio=portfolio)
        stamp = None if version is None else (*version, tuple(s.pk for s in strategies))
    key = f"reporting:history:{portfolio.pk}"
    if stamp is not None:
        hit = cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1], hit[2]
    snapshots = selectors.portfolio_history_frame(portfolio=portfolio)
    strategy_snapshots = selectors.strategy_history_frame(portfolio=portfolio)
    if stamp is not None:
        cache.set(key, (stamp, snapshots, strategy_snapshots), HISTORY_CACHE_SECONDS)
    return snapshots, strategy_snapshots


def finite(x) -> float | None:
    """``x`` as a float, or None for NaN / inf / None (templates show a dash)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def in_force_allocation(strategy: Strategy) -> float:
    """The allocation the method set at the last rebalance, else the static target."""
    if strategy.current_allocation is None:
        return float(strategy.target_allocation)
    return float(strategy.current_allocation)


def limit_threshold(limits, *, scope: str, metric: str, pick=min) -> float | None:
    """The threshold of the enabled limits with this scope and metric (``pick`` of them
    when several apply, e.g. the tighter of an alert and a hard limit), or None."""
    values = [
        lim.threshold
        for lim in limits
        if lim.enabled and lim.scope == scope and lim.metric == metric
    ]
    return pick(values) if values else None


DRIFT_NOTE = 0.02  # an active book this far (absolute) from its target share is flagged
PAUSED_NOTE = (
    "Paused: the book keeps its capital and its positions, which still rise and fall with "
    "the market; it places no new signal orders and rebalances skip it, so its weight "
    "drifts with its own return. When it resumes, the next rebalance brings it back to "
    "its target."
)
PAUSED_SHORT = "Paused: keeps its capital, which drifts with the market until it resumes."
DRIFT_TEXT = (
    "Drifted {gap} from its target share since the last rebalance (market moves, risk "
    "actions or costs); the next rebalance moves capital back to target."
)


def allocation_view(strategy: Strategy, *, weight: float | None, leverage_target: float) -> dict:
    """The allocation of a book as the pages show it: static (configured), in_force
    (``in_force_allocation``), target_share = in_force / T (the share of portfolio equity
    the book is funded with under the leverage target T: a book trades its allocation of
    the equity with allocation / T of the capital), weight (its actual share of equity at
    the close, StrategySnapshot.weight), gap = weight - target_share, and a note saying
    why they differ (a paused book; an active book more than 2 points off target), and
    short_note, its first sentence, for narrow tables."""
    in_force = in_force_allocation(strategy)
    target_share = in_force / leverage_target if leverage_target > 0 else in_force
    gap = None if weight is None else weight - target_share
    if strategy.status == Strategy.Status.PAUSED:
        note, short = PAUSED_NOTE, PAUSED_SHORT
    elif gap is not None and abs(gap) > DRIFT_NOTE:
        note = DRIFT_TEXT.format(gap=f"{gap * 100:+.1f} points")
        short = note.split(";")[0] + "."
    else:
        note = short = ""
    return {
        "static": float(strategy.target_allocation),
        "in_force": in_force,
        "target_share": target_share,
        "weight": weight,
        "gap": gap,
        "note": note,
        "short_note": short,
    }
