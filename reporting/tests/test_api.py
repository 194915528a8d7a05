"""Reporting reads: equity curves (portfolio and per strategy) with ``start``/``end`` and
``points`` decimation that keeps the extremes, and positions netted by ticker."""

from __future__ import annotations

import csv
import io

import pytest

from portfolio.models import Portfolio, PriceBar
from portfolio.tests.api_data import START, books_add, cast_build, equity_at

pytestmark = pytest.mark.django_db


def rows(client, url) -> list[dict]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def close_on(ticker, day) -> float:
    return PriceBar.objects.filter(instrument__ticker=ticker, date__lte=day).latest("date").close


@pytest.mark.parametrize(
    "url", ["/api/equity/portfolio/", "/api/equity/strategies/", "/api/positions/netted/"]
)
def test_anonymous_users_are_refused(client, url):
    assert client.get(url).status_code in (401, 403)


def test_the_portfolio_curve_is_the_live_one_oldest_first_within_the_window(logged_in):
    cast = cast_build(days=12)
    backtest = cast_build(days=3, name="Backtest")
    Portfolio.objects.filter(pk=backtest.portfolio.pk).update(is_backtest=True)
    curve = rows(logged_in, "/api/equity/portfolio/")
    assert [r["date"] for r in curve] == [str(cast.day(i)) for i in range(12)]
    assert [r["equity"] for r in curve] == [equity_at(i) for i in range(12)]
    assert {r["portfolio"] for r in curve} == {cast.portfolio.pk}
    other = rows(logged_in, f"/api/equity/portfolio/?portfolio={backtest.portfolio.pk}")
    assert len(other) == 3 and {r["portfolio"] for r in other} == {backtest.portfolio.pk}
    window = rows(logged_in, f"/api/equity/portfolio/?start={cast.day(3)}&end={cast.day(5)}")
    assert [r["date"] for r in window] == [str(cast.day(i)) for i in (3, 4, 5)]


def test_points_keeps_the_first_last_peak_and_trough(logged_in):
    cast = cast_build(days=1000, trades=0)
    kept = rows(logged_in, "/api/equity/portfolio/?points=20")
    dates = [r["date"] for r in kept]
    equities = [equity_at(i) for i in range(1000)]
    peak, trough = equities.index(max(equities)), equities.index(min(equities))
    assert 4 <= len(kept) <= 20 and dates == sorted(dates)
    for i in (0, 999, peak, trough):
        assert str(cast.day(i)) in dates, i
    assert max(r["equity"] for r in kept) == max(equities)
    assert len(rows(logged_in, "/api/equity/portfolio/?points=5000&page_size=1000")) == 1000


def test_strategy_curves_filter_by_book_and_decimate_every_book_together(logged_in):
    cast = cast_build(days=300, trades=0)
    momo = rows(logged_in, "/api/equity/strategies/?strategy=momo&page_size=1000")
    assert len(momo) == 300 and {r["strategy"] for r in momo} == {"momo"}
    by_id = rows(logged_in, f"/api/equity/strategies/?strategy={cast.carry.pk}&end={cast.day(1)}")
    assert [(r["strategy"], r["date"]) for r in by_id] == [
        ("carry", str(cast.day(0))), ("carry", str(cast.day(1))),
    ]  # fmt: skip
    kept = rows(logged_in, "/api/equity/strategies/?points=12&page_size=1000")
    dates = sorted({r["date"] for r in kept})
    assert len(dates) <= 12 and len(kept) == 2 * len(dates)
    trough = min(range(300), key=equity_at)
    assert str(cast.day(trough)) in dates and str(cast.day(299)) in dates
    response = logged_in.get("/api/equity/strategies/?points=5")
    assert response.status_code == 400 and ">= 6" in response.json()["points"][0]


@pytest.mark.parametrize(
    ("query", "named"),
    [("points=3", "points"), ("points=ten", "points"), ("points=9999", "points"),
     ("points=4.5", "points"),
     ("from=2020-01-01", "from"), ("start=01/02/2020", "start"), ("portfolio=x", "portfolio")],
)  # fmt: skip
def test_a_bad_curve_query_is_a_400_naming_the_parameter(logged_in, query, named):
    cast_build()
    response = logged_in.get(f"/api/equity/portfolio/?{query}")
    assert response.status_code == 400 and list(response.json()) == [named]


def test_the_curve_comes_as_csv(logged_in):
    cast_build(days=3)
    text = logged_in.get("/api/equity/portfolio/?format=csv").content.decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [float(r["equity"]) for r in table] == [equity_at(i) for i in range(3)]
    assert table[0]["date"] == str(START)


def test_positions_are_netted_by_ticker_with_the_books_behind_them(logged_in):
    cast = cast_build(days=10)
    netted = logged_in.get("/api/positions/netted/").json()
    as_of = cast.day(9)
    aapl, amd = (float(close_on(t, as_of)) for t in ("AAPL", "AMD"))
    by_ticker = {r["ticker"]: r for r in netted}
    assert [r["ticker"] for r in netted] == sorted(
        by_ticker, key=lambda t: -abs(by_ticker[t]["net"])
    )
    row = by_ticker["AAPL"]
    assert row["net_quantity"] == 6.0 and row["close"] == aapl
    assert row["net"] == pytest.approx(6 * aapl) and row["gross"] == pytest.approx(14 * aapl)
    assert row["weight"] == pytest.approx(6 * aapl / equity_at(9))
    assert row["unrealized_pnl"] == pytest.approx(10 * (aapl - 50) - 4 * (aapl - 60))
    assert sorted((b["strategy"], b["quantity"]) for b in row["books"]) == [
        ("carry", -4.0), ("momo", 10.0),
    ]  # fmt: skip
    assert (
        by_ticker["AMD"]["gross"] == pytest.approx(2 * amd) and len(by_ticker["AMD"]["books"]) == 1
    )
    same = logged_in.get(f"/api/positions/netted/?portfolio={cast.portfolio.pk}").json()
    assert same == netted
    assert logged_in.get("/api/positions/netted/?portfolio=999999").status_code == 404


@pytest.mark.parametrize(
    ("query", "named"), [("ticker=AAPL", "ticker"), ("portfolio=x", "portfolio")]
)
def test_a_bad_netted_query_is_a_400_naming_the_parameter(logged_in, query, named):
    response = logged_in.get(f"/api/positions/netted/?{query}")
    assert response.status_code == 400 and list(response.json()) == [named]


@pytest.mark.parametrize("n", [10, 1000])
@pytest.mark.parametrize(
    ("url", "queries"),
    [
        ("/api/equity/portfolio/", 4),  # session, user, count, page
        ("/api/equity/strategies/", 4),
        ("/api/equity/portfolio/?points=8", 5),  # + the values the decimation reads
        ("/api/equity/strategies/?points=12", 5),
        ("/api/positions/netted/", 4),  # session, user, portfolio, positions
    ],
)
def test_query_counts_do_not_grow_with_the_rows(
    logged_in, django_assert_num_queries, n, url, queries
):
    cast_build(days=n, trades=0)
    with django_assert_num_queries(queries):
        assert logged_in.get(url).status_code == 200


@pytest.mark.parametrize("books", [10, 1000])
def test_netting_takes_the_same_queries_for_10_and_1000_books(
    logged_in, django_assert_num_queries, books
):
    books_add(cast_build(days=3), books)
    with django_assert_num_queries(4):  # session, user, portfolio, positions
        netted = logged_in.get("/api/positions/netted/").json()
    aapl = next(r for r in netted if r["ticker"] == "AAPL")
    assert aapl["net_quantity"] == 6.0 + books and len(aapl["books"]) == books + 2


@pytest.mark.parametrize(
    "url", ["/api/equity/portfolio/?points=8", "/api/equity/strategies/", "/api/positions/netted/"]
)
def test_the_browsable_api_renders_the_curves_and_the_netting(logged_in, url):
    cast_build()
    response = logged_in.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<form" in response.content
