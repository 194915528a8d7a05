"""Frames every page derives the same way from the selectors' output."""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.cache import caches
from django.template.loader import render_to_string

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


def history_load(*, portfolio: Portfolio, strategies: list[Strategy] | None = None) -> History:
    """The portfolio's history; the snapshot frames come from the pages cache when the
    committed state has not moved since they were read (``_snapshot_frames``).
    ``strategies``: the portfolio's (``selectors.strategy_list``), when already read."""
    if strategies is None:
        strategies = selectors.strategy_list(portfolio=portfolio)
    snapshots, strategy_snapshots = _snapshot_frames(portfolio, strategies)
    return History(
        portfolio=portfolio,
        snapshots=snapshots,
        strategies=strategies,
        strategy_snapshots=strategy_snapshots,
    )


STATE_CACHE_SECONDS = 24 * 3600


def code_stamp(root: Path) -> str:
    """A digest of the code that builds what the pages cache (every module of the apps
    under ``root`` but their tests and migrations, and the templates, since the pages
    cache rendered HTML, ``stored_html``): the cache outlives a process (files,
    Redis), so an entry built by other code (an upgrade, a deploy) must not be served."""
    digest = hashlib.sha256()
    for app in ("portfolio", "reporting", "risk", "operations", "quantsite", "templates"):
        for path in sorted([*(root / app).rglob("*.py"), *(root / app).rglob("*.html")]):
            if not {"tests", "migrations"} & set(path.relative_to(root).parts):
                digest.update(path.relative_to(root).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


CODE_STAMP = code_stamp(Path(__file__).resolve().parents[2])
BUILD_LOCK_SECONDS = 120  # a builder that died frees its claim after this long
BUILD_WAIT_SECONDS = 60.0  # the longest a request waits for another process's build
BUILD_POLL_SECONDS = 0.05


def state_cached(*, portfolio: Portfolio, name: str, depends: tuple, build):
    """``build()``, computed once per committed state of ``portfolio`` and served from the
    "pages" cache until the next (``settings.QUANTSITE_HISTORY_CACHE``; off: always built).

    Everything a page draws from stored rows (snapshots, trades, positions, violations,
    closes up to the as-of bar) changes only in a commit of the update path, which bumps
    the portfolio's ``StateVersion`` (``selectors.state_stamp_get``: its version and
    commit time, no query when the portfolio came with it). The entry is stamped with that
    state, with the bars and instruments every page also reads
    (``selectors.reference_stamp_get``, 2 queries: they change outside the update path's
    commits too) and with ``depends``, whatever else the value is a function of (a query
    parameter, the configuration rows it shows, as in ``row_stamp``) and with the code
    that built it (``CODE_STAMP``), and is used only when all of them still match. The
    stamp is read before ``build`` reads rows, so an entry is never older than its stamp.
    One entry per ``name`` and portfolio: a new state overwrites the old one. Nothing is
    cached before the first commit (no version row).

    The cache is shared by every process (settings ``CACHES["pages"]``), and one state is
    built once (``stamped_build``): the web servers' requests and the worker's
    ``pages_warm`` after an update wait for each other's build instead of repeating it.
    The value is pickled by the cache, so a caller may change what it gets back."""
    version = selectors.state_stamp_get(portfolio=portfolio)
    if version is None or not settings.QUANTSITE_HISTORY_CACHE:
        return build()
    stamp = (*version, selectors.reference_stamp_get(), depends, CODE_STAMP)
    return stamped_build(caches["pages"], f"reporting:{name}:{portfolio.pk}", stamp, build)


def stamped_build(pages, key: str, stamp: tuple, build):
    """The value ``pages`` (a cache) holds under ``key`` for ``stamp``, else ``build()``,
    stored there with its stamp. Built once whatever the number of callers: the first to
    miss claims ``stamp``'s build (``add`` of a key naming the stamp: atomic in Redis, and
    in files but for a narrow race, where two build the same thing), and the others wait
    for its entry while the claim stands (``_built_elsewhere``), then build it themselves
    if it never came (the builder failed, or died and its claim expired)."""
    hit = pages.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    claim = f"{key}:building:{hashlib.sha256(repr(stamp).encode()).hexdigest()[:24]}"
    claimed = pages.add(claim, os.getpid(), BUILD_LOCK_SECONDS)
    if not claimed:
        hit = _built_elsewhere(pages, key, claim, stamp)
        if hit is not None:
            return hit[1]
    try:
        value = build()
        pages.set(key, (stamp, value), STATE_CACHE_SECONDS)
    finally:
        if claimed:
            pages.delete(claim)
    return value


def _built_elsewhere(pages, key: str, claim: str, stamp: tuple):
    """The entry another builder of ``stamp`` stores under ``key``, waited for while its
    claim stands (at most ``BUILD_WAIT_SECONDS``); None when the claim went without it (the
    build failed, or a newer state overwrote the entry): the caller builds."""
    deadline = time.monotonic() + BUILD_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(BUILD_POLL_SECONDS)
        hit = pages.get(key)
        if hit is not None and hit[0] == stamp:
            return hit
        if not pages.has_key(claim):
            return None
    return None


def stored_html(context: dict, parts: dict[str, str], **extra) -> dict:
    """``context`` with ``html``: each of ``parts`` (key -> name of a template under
    reporting/stored/) rendered with ``context`` and ``extra`` (the configuration rows
    the page's stamp holds, e.g. the portfolio), for the page template to insert as is.

    Called inside a page's ``state_cached`` build, so the HTML is rendered once per
    committed state, shares the entry (and the stamp) of the data it shows, and is built
    by the update's warm-up too. It is rendered without a request: these templates show
    nothing that depends on the user, the session or the request (no CSRF token, no
    messages, no permission-dependent controls): those parts stay in the page
    templates, rendered on every request. Rendering the same templates with the same
    data on a miss and with the cache off, the page is byte for byte the same either
    way; the ``data-live`` markers ``reporting.fragments`` cuts the live JSON by are in
    them as before."""
    data = {**context, **extra}
    context["html"] = {
        key: render_to_string(f"reporting/stored/{name}.html", data) for key, name in parts.items()
    }
    return context


def row_stamp(row) -> tuple:
    """Every stored field of a model instance as loaded (for ``state_cached``'s
    ``depends``: a configuration row the cached value reflects)."""
    return tuple((f.attname, getattr(row, f.attname)) for f in row._meta.concrete_fields)


def _snapshot_frames(portfolio: Portfolio, strategies: list[Strategy]):
    """Both snapshot frames (``selectors.portfolio_history_frame``,
    ``strategy_history_frame``), cached per committed state (``state_cached``) and the
    strategies' ids (a strategy deleted takes its snapshots with it: the ids change)."""

    def read():
        return (
            selectors.portfolio_history_frame(portfolio=portfolio),
            selectors.strategy_history_frame(portfolio=portfolio),
        )

    return state_cached(
        portfolio=portfolio,
        name="history",
        depends=tuple(s.pk for s in strategies),
        build=read,
    )


def finite(x) -> float | None:
    """``x`` as a float, or None for NaN / inf / None (templates show a dash)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def shown(x) -> float | None:
    """``x`` as a float for a page to show, or None for NaN / None; an infinite value is
    kept (the templates' filters write ∞: a ratio with nothing below it is a figure,
    ``risk.engine.metrics``), unlike ``finite``, which is for JSON and charts."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


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
