"""Portfolio reads: auth, every filter, strict parameters, cursor pagination, CSV, and
query counts pinned equal for 10 and 1,000 rows."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import pytest

from portfolio.models import ConfigChange, RebalanceEvent, Strategy, Trade
from portfolio.tests.api_data import books_add, cast_build

pytestmark = pytest.mark.django_db

READS = (
    "/api/portfolios/",
    "/api/strategies/",
    "/api/trades/",
    "/api/positions/",
    "/api/rebalances/",
    "/api/audit/",
)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def trade_ids(**lookups) -> list[int]:
    return list(
        Trade.objects.filter(**lookups).order_by("-date", "-id").values_list("id", flat=True)
    )


@pytest.mark.parametrize("url", READS)
def test_anonymous_users_are_refused_every_read(client, url):
    assert client.get(url).status_code in (401, 403)


@pytest.mark.parametrize("url", READS)
def test_a_plain_user_reads_every_list_and_cannot_write(logged_in, url):
    cast_build()
    assert logged_in.get(url).status_code == 200
    assert logged_in.post(url, {}).status_code in (403, 405)


def test_each_trade_filter_narrows_the_list_as_documented(logged_in):
    cast = cast_build(days=10, trades=40)
    url = "/api/trades/?page_size=1000"
    assert ids(logged_in.get(url)) == trade_ids()
    assert ids(logged_in.get(url + "&strategy=momo")) == trade_ids(strategy=cast.momo)
    assert ids(logged_in.get(url + f"&strategy={cast.carry.pk}")) == trade_ids(strategy=cast.carry)
    assert ids(logged_in.get(url + "&ticker=amd")) == trade_ids(instrument__ticker="AMD")
    assert ids(logged_in.get(url + "&side=sell")) == trade_ids(side="sell")
    assert ids(logged_in.get(url + "&reason=rebalance")) == trade_ids(reason="rebalance")
    window = ids(logged_in.get(url + f"&start={cast.day(2)}&end={cast.day(4)}"))
    assert window == trade_ids(date__gte=cast.day(2), date__lte=cast.day(4)) and window
    assert ids(logged_in.get(url + f"&portfolio={cast.portfolio.pk}")) == trade_ids()
    assert ids(logged_in.get(url + f"&portfolio={cast.portfolio.pk + 1}")) == []
    both = ids(logged_in.get(url + "&strategy=momo&side=buy&ticker=AAPL"))
    assert both == trade_ids(strategy=cast.momo, side="buy", instrument__ticker="AAPL") and both
    assert len({len(trade_ids()), len(trade_ids(strategy=cast.momo)), len(window)}) == 3


def test_trades_are_ordered_on_request(logged_in):
    cast_build(trades=12)
    got = ids(logged_in.get("/api/trades/?ordering=value"))
    assert got == list(Trade.objects.order_by("value", "-id").values_list("id", flat=True))
    got = ids(logged_in.get("/api/trades/?ordering=-value"))
    assert got == list(Trade.objects.order_by("-value", "-id").values_list("id", flat=True))


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("strateg=momo", "strateg"),
        ("date_from=2020-01-01", "date_from"),
        ("start=2020-13-01", "start"),
        ("end=yesterday", "end"),
        ("side=hold", "side"),
        ("reason=luck", "reason"),
        ("portfolio=one", "portfolio"),
        ("ordering=ticker", "ordering"),
        ("page_size=0", "page_size"),
        ("page_size=many", "page_size"),
        ("format=xml", "format"),
        ("portfolio=1.5", "portfolio"),
        ("portfolio=0", "portfolio"),
        ("portfolio=99999999999999999999", "portfolio"),
        ("start=", "start"),
        ("ticker=", "ticker"),
        ("format=", "format"),
        ("ordering=", "ordering"),
        ("cursor=", "cursor"),
        ("cursor=cD0yMDIw", "cursor"),
        ("cursor=p1x", "cursor"),
    ],
)
def test_an_unknown_parameter_or_a_malformed_value_is_a_400_naming_it(logged_in, query, named):
    cast_build()
    response = logged_in.get(f"/api/trades/?{query}")
    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body) == [named] and body[named][0]


@pytest.mark.parametrize("url", READS[:2] + READS[3:])
def test_every_list_refuses_an_unknown_parameter(logged_in, url):
    cast_build()
    response = logged_in.get(url + "?colour=red")
    assert response.status_code == 400 and "colour" in response.json()


def test_the_cursor_walks_every_trade_once_and_page_size_is_capped(logged_in):
    cast_build(days=30, trades=1005)
    seen, url = [], "/api/trades/?page_size=300&side=buy"
    while url:
        body = logged_in.get(url).json()
        assert body["count"] == Trade.objects.filter(side="buy").count()
        seen += [r["id"] for r in body["results"]]
        url = body["next"]
    assert seen == trade_ids(side="buy")
    capped = logged_in.get("/api/trades/?page_size=5000").json()
    assert len(capped["results"]) == 1000 and capped["next"] and capped["count"] == 1005


def test_the_cursor_names_the_boundary_row_and_survives_a_change_of_ordering(logged_in):
    cast_build(days=30, trades=12)
    first = logged_in.get("/api/trades/?page_size=5").json()
    cursor = parse_qs(urlsplit(first["next"]).query)["cursor"][0]
    assert cursor == f"p{first['results'][-1]['id']}"  # the last row shown
    second = logged_in.get(first["next"]).json()
    back = logged_in.get(second["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    by_value = logged_in.get(f"/api/trades/?ordering=value&cursor={cursor}").json()
    boundary = Trade.objects.get(pk=first["results"][-1]["id"]).value
    assert by_value["results"] and all(r["value"] > boundary for r in by_value["results"])


def test_a_cursor_whose_row_is_gone_is_a_404(logged_in):
    cast_build(trades=3)
    gone = Trade.objects.order_by("id").last().pk
    Trade.objects.filter(pk=gone).delete()
    response = logged_in.get(f"/api/trades/?cursor=p{gone}")
    assert response.status_code == 404 and "no longer exists" in response.json()["detail"]


def test_an_empty_page_as_csv_is_the_header_line(logged_in):
    cast_build(trades=3)
    response = logged_in.get("/api/trades/?format=csv&side=buy&start=2100-01-01")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response.content.decode().splitlines() == [
        "id,strategy,ticker,date,side,quantity,price,value,cost,realized_pnl,reason,detail"
    ]


def test_strategies_carry_their_latest_stats(logged_in):
    cast = cast_build(days=10)
    rows = {r["name"]: r for r in logged_in.get("/api/strategies/").json()["results"]}
    momo = rows["momo"]
    assert momo["as_of"] == str(cast.day(9)) and momo["status"] == "active"
    assert momo["equity"] == pytest.approx((1_000_000.0 + 9) / 2)
    assert momo["total_return"] == pytest.approx(0.1) and rows["carry"][
        "total_return"
    ] == pytest.approx(-0.05)
    assert (momo["drawdown"], rows["carry"]["drawdown"]) == (0.0, -0.02)
    assert (momo["allocation"], rows["carry"]["allocation"]) == (0.4, pytest.approx(0.6))
    assert rows["carry"]["daily_return"] == 0.002 and momo["weight"] == 0.5
    paused = logged_in.get("/api/strategies/?status=paused").json()
    assert paused["count"] == 0
    Strategy.objects.filter(pk=cast.carry.pk).update(status="paused")
    assert [
        r["name"] for r in logged_in.get("/api/strategies/?status=paused").json()["results"]
    ] == ["carry"]


def test_a_strategy_without_snapshots_has_null_stats(logged_in):
    cast = cast_build(days=1)
    Strategy.objects.create(
        portfolio=cast.portfolio, name="new", signal_type="momentum", target_allocation=0
    )
    row = logged_in.get("/api/strategies/?signal_type=momentum&ordering=-id").json()["results"][0]
    assert row["name"] == "new" and row["equity"] is None and row["total_return"] is None


def test_positions_filter_by_book_and_ticker(logged_in):
    cast = cast_build()
    assert logged_in.get("/api/positions/").json()["count"] == 3
    carry = logged_in.get(f"/api/positions/?strategy={cast.carry.pk}").json()["results"]
    assert sorted((p["ticker"], p["quantity"]) for p in carry) == [("AAPL", -4.0), ("AMD", 2.0)]
    assert [
        p["strategy"] for p in logged_in.get("/api/positions/?ticker=AMD").json()["results"]
    ] == ["carry"]


def test_rebalances_filter_by_trigger_and_date(logged_in):
    cast = cast_build()
    for i, trigger in enumerate(("initial", "periodic", "manual")):
        RebalanceEvent.objects.create(
            portfolio=cast.portfolio, date=cast.day(i * 3), trigger=trigger, capital_moved=1.0
        )
    assert logged_in.get("/api/rebalances/").json()["count"] == 3
    rows = logged_in.get("/api/rebalances/?trigger=periodic").json()["results"]
    assert [r["trigger"] for r in rows] == ["periodic"]
    rows = logged_in.get(f"/api/rebalances/?start={cast.day(3)}").json()["results"]
    assert [r["trigger"] for r in rows] == ["manual", "periodic"]


def test_the_audit_trail_filters_by_source_field_and_date(logged_in):
    cast = cast_build()
    for source, field in (("yaml", "target_allocation"), ("page", "status"), ("admin", "status")):
        ConfigChange.objects.create(
            portfolio=cast.portfolio,
            source=source,
            object_type="strategy",
            object_repr="momo",
            field=field,
            before="a",
            after="b",
        )
    assert logged_in.get("/api/audit/").json()["count"] == 3
    rows = logged_in.get("/api/audit/?field=status&source=page").json()["results"]
    assert [(r["source"], r["before"], r["after"]) for r in rows] == [("page", "a", "b")]
    assert logged_in.get("/api/audit/?end=2000-01-01").json()["count"] == 0
    assert logged_in.get("/api/audit/?start=2000-01-01").json()["count"] == 3


def test_trades_come_as_csv_with_numbers_and_iso_dates(logged_in):
    cast_build(trades=3)
    response = logged_in.get("/api/trades/?format=csv&ordering=value")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [float(r["value"]) for r in rows] == [100.0, 200.0, 300.0]
    assert rows[0]["date"] == "2020-01-01" and rows[0]["strategy"] == "momo"


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize("url", READS)
def test_list_query_counts_do_not_grow_with_the_rows(
    logged_in, django_assert_num_queries, rows, url
):
    cast = cast_build(days=rows, trades=rows)
    ConfigChange.objects.bulk_create(
        ConfigChange(
            portfolio=cast.portfolio, source="yaml", object_type="s", object_repr="x", field="f"
        )
        for _ in range(rows)
    )
    RebalanceEvent.objects.bulk_create(
        RebalanceEvent(
            portfolio=cast.portfolio, date=cast.day(i), trigger="periodic", capital_moved=1.0
        )
        for i in range(rows)
    )
    with django_assert_num_queries(4):  # session, user, count, page
        assert logged_in.get(url + "?ordering=id").status_code == 200


def test_decimal_fields_are_json_numbers(logged_in):
    cast = cast_build()
    row = logged_in.get(f"/api/portfolios/{cast.portfolio.pk}/").json()
    assert row["initial_capital"] == 1_000_000 and isinstance(row["initial_capital"], float)
    strategy = logged_in.get(f"/api/strategies/{cast.momo.pk}/").json()
    assert strategy["target_allocation"] == 0.5


@pytest.mark.parametrize("books", [10, 1000])
def test_strategy_stats_take_the_same_queries_for_10_and_1000_books(
    logged_in, django_assert_num_queries, books
):
    books_add(cast_build(days=3), books)
    with django_assert_num_queries(4):  # session, user, count, page (stats as subqueries)
        body = logged_in.get("/api/strategies/?limit=1000").json()
    assert body["count"] == books + 2
    assert all(r["as_of"] == "2020-01-03" for r in body["results"])


@pytest.mark.parametrize("url", [*READS, "/api/trades/?format=api&side=buy"])
def test_the_browsable_api_renders_every_list(logged_in, url):
    cast_build()
    response = logged_in.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<form" in response.content
