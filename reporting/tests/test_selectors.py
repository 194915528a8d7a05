"""The read path: returns for statistics on literal snapshot frames (no database); the
live-portfolio rule and the export row counts on the database."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from portfolio.models import Portfolio
from reporting import selectors
from reporting.selectors import portfolio_return_series, strategy_return_frame


def test_the_portfolio_funding_day_is_not_a_return():
    # Three snapshots: the funding day (stored 0.0) and two closes after it -> 2 returns.
    snaps = pd.DataFrame(
        {"daily_return": [0.0, 0.01, -0.02]},
        index=pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"]),
    )
    r = portfolio_return_series(snaps)
    assert list(r.index.day) == [3, 4]
    np.testing.assert_allclose(r, [0.01, -0.02])


def test_each_book_loses_its_own_funding_day_not_the_portfolios():
    # Book a is funded on Jan 2, book b only on Jan 3: a has 2 returns, b has 1 (Jan 4);
    # b's stored 0.0 on Jan 3 is its funding day, not a flat day.
    long = pd.DataFrame(
        [
            ("a", "2024-01-02", 0.0),
            ("a", "2024-01-03", 0.01),
            ("b", "2024-01-03", 0.0),
            ("a", "2024-01-04", 0.02),
            ("b", "2024-01-04", -0.03),
        ],
        columns=["strategy", "date", "daily_return"],
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    wide = strategy_return_frame(long, ["b", "a"])
    assert list(wide.columns) == ["b", "a"]
    np.testing.assert_allclose(wide["a"].dropna(), [0.01, 0.02])
    np.testing.assert_allclose(wide["b"].dropna(), [-0.03])
    assert list(wide["b"].dropna().index.day) == [4]


# --- one read path: the live-portfolio rule and the export row counts ----------------------


@pytest.mark.django_db
def test_the_live_portfolio_is_the_first_non_backtest_one_everywhere():
    from reporting.tests.test_exports import make_portfolio

    backtest = make_portfolio("a backtest", as_of=date(1990, 1, 31), backtest=True)
    first = make_portfolio("first", as_of=date(1990, 1, 31))
    make_portfolio("second", as_of=date(1990, 1, 31))
    assert selectors.portfolio_live_get() == first
    assert selectors.portfolio_get() == first
    assert Portfolio.objects.filter(id=selectors.live_portfolio_id_subquery()).get() == first
    assert selectors.portfolio_get(pk=backtest.pk) == backtest
    assert selectors.portfolio_get(name="a backtest") == backtest
    # an unknown id or name is None (a 404 for a download), not the live portfolio ...
    assert selectors.portfolio_get(pk=10**9) is None
    assert selectors.portfolio_get(name="nope") is None
    # ... while the dashboard's picker falls back to it
    assert selectors.portfolio_shown_get(pk=10**9) == first


@pytest.mark.django_db
def test_the_export_row_counts_are_the_tables_lengths_in_one_query(django_assert_num_queries):
    from reporting import exports
    from reporting.tests.test_exports import add_violation, make_portfolio

    portfolio = make_portfolio("counted", as_of=date(1990, 3, 30))
    make_portfolio("other", as_of=date(1990, 6, 29))  # never counted in
    add_violation(portfolio)
    with django_assert_num_queries(1):
        counts = selectors.portfolio_row_counts(portfolio=portfolio)
    lengths = {name: len(frame) for name, frame in exports.export_frames(portfolio, "all").items()}
    assert counts == lengths
    assert counts["trades"] > 0 and counts["positions"] > 0 and counts["violations"] == 1


@pytest.mark.django_db
def test_the_activity_fills_are_summed_over_the_newest_fill_dates_only_as_over_all(
    django_assert_num_queries,
):
    """``activity_trade_groups`` sums only the fills of its ``limit`` newest fill dates;
    the groups are those of summing every fill, cut at ``limit``, whether there are more
    fill dates than ``limit`` or fewer, and one query still."""
    from django.db.models import Count, F, Q, Sum
    from django.db.models.functions import Coalesce

    from portfolio.models import Trade
    from reporting.tests.test_exports import make_portfolio

    portfolio = make_portfolio("activity", as_of=date(1990, 6, 29))
    make_portfolio("other", as_of=date(1990, 6, 29))  # its fills never count
    buy, sell = Q(side=Trade.Side.BUY), Q(side=Trade.Side.SELL)
    every = (
        Trade.objects.filter(strategy__portfolio=portfolio)
        .values("date", "reason", strategy_name=F("strategy__name"))
        .annotate(
            fills=Count("id"),
            buys=Count("id", filter=buy),
            sells=Count("id", filter=sell),
            bought=Coalesce(Sum("value", filter=buy), 0.0),
            sold=Coalesce(Sum("value", filter=sell), 0.0),
            cost_sum=Sum("cost"),
            realized=Sum("realized_pnl"),
        )
        .order_by("-date", "strategy_name", "reason")
    )
    dates = Trade.objects.filter(strategy__portfolio=portfolio).values("date").distinct().count()
    assert dates > 3
    for limit in (1, 3, dates, dates + 10):
        with django_assert_num_queries(1):
            groups = selectors.activity_trade_groups(portfolio=portfolio, limit=limit)
        # the same groups; a sum may differ in its last bit (PostgreSQL's plan adds the
        # fills in another order)
        assert groups == [pytest.approx(g, rel=1e-12) for g in every[:limit]], limit
    assert len(selectors.activity_trade_groups(portfolio=portfolio, limit=dates + 10)) > dates
