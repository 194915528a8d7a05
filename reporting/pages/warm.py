"""The pages' cached part built right after an update commits (``pages_warm``).

Every page computes what it draws from stored rows once per committed state
(``common.state_cached``) in a cache every process shares, and renders the HTML of that
part with it (``common.stored_html``: templates that need no request, so the worker
renders them as a request would). Without this, the first visitor
after each new bar waits for that computation (0.3 to 0.8 s a page on the demo, every
strategy page and performance section its own); with it, the update's process (the
worker, or ``manage.py run_update``) computes it once, after its last commit, and the open
dashboards that refetch on the update's push find it built, or wait for the build in
progress rather than repeat it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.http import QueryDict

from portfolio import selectors as portfolio_selectors
from portfolio.models import Portfolio
from reporting import selectors
from reporting.pages.overview import overview_page
from reporting.pages.performance import DEFAULT_WINDOW, SECTIONS, performance_page
from reporting.pages.risk import risk_page
from reporting.pages.strategy import strategy_page

log = logging.getLogger(__name__)


def pages_warm(*, portfolio: Portfolio) -> dict[str, float]:
    """Build the cached part of every page of ``portfolio`` at its committed state, as a
    request with no query parameters reads it: the overview, the risk page, each
    performance section at the default window, and each
    strategy's page as its tab opens it (no ticker chosen). Returns the seconds each page
    took, by path; nothing when the cache is off. A page that fails to build is logged and
    skipped: the warm-up never fails the update, and the page's own request shows the
    error."""
    if not settings.QUANTSITE_HISTORY_CACHE:
        return {}
    builds = {
        "/": lambda: overview_page(portfolio=portfolio),
        "/risk/": lambda: risk_page(portfolio=portfolio, params=QueryDict()),
    }
    for section in SECTIONS:
        builds[f"/performance/?section={section}"] = lambda section=section: performance_page(
            portfolio=portfolio, window=DEFAULT_WINDOW, section=section
        )
    for strategy in selectors.strategy_list(portfolio=portfolio):
        builds[f"/strategy/{strategy.name}/"] = lambda s=strategy: strategy_page(
            portfolio=portfolio, strategy=s, ticker="", page=1
        )
    seconds = {}
    for path, build in builds.items():
        t = time.perf_counter()
        try:
            build()
        except Exception:
            log.exception("pages warm-up: %s of portfolio %s failed", path, portfolio.pk)
            continue
        seconds[path] = time.perf_counter() - t
    return seconds


def live_pages_warm() -> float:
    """``pages_warm`` for every live portfolio (what ``run_update`` applies bars to), each
    loaded afresh as the pages load it; the seconds it took in all."""
    t = time.perf_counter()
    for live in portfolio_selectors.live_portfolios():
        portfolio = selectors.portfolio_get(pk=live.pk)
        if portfolio is None:  # deleted meanwhile
            continue
        seconds = pages_warm(portfolio=portfolio)
        if seconds:
            log.info(
                "pages warm-up: portfolio %s, %d pages in %.2f s",
                portfolio.pk,
                len(seconds),
                sum(seconds.values()),
            )
    return time.perf_counter() - t
