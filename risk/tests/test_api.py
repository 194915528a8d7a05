"""Risk reads: violations (every filter), the stored risk measures per close, and the
alert outbox for staff only; strict parameters and query counts for 10 and 1,000 rows."""

from __future__ import annotations

import pytest
from django.test import Client

from portfolio.models import Instrument, PortfolioSnapshot
from portfolio.tests.api_data import cast_build
from risk.models import AlertChannel, AlertDelivery, RiskLimit, Violation

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("boss", is_staff=True))
    return client


def breaches(cast, n: int) -> list[Violation]:
    """``n`` violations cycling through three limits (portfolio, strategy, position scope),
    severities high/low, open/resolved, the two books and dates."""
    limits = [
        RiskLimit.objects.create(
            portfolio=cast.portfolio,
            name=f"{scope}-limit",
            scope=scope,
            metric="leverage",
            direction="max",
            threshold=1.0,
            severity="high",
            action="alert_only",
        )
        for scope in ("portfolio", "strategy", "position")
    ]
    aapl = Instrument.objects.get(ticker="AAPL")
    return Violation.objects.bulk_create(
        Violation(
            portfolio=cast.portfolio,
            limit=limits[i % 3],
            severity="high" if i % 2 else "low",
            strategy=None if i % 3 == 0 else (cast.momo if i % 3 == 1 else cast.carry),
            instrument=aapl if i % 3 == 2 else None,
            date=cast.day(i % cast.days),
            value=1.5 + i,
            threshold=1.0,
            action_taken="alert_only",
            status="resolved" if i % 4 == 0 else "open",
        )
        for i in range(n)
    )


def vids(**lookups) -> list[int]:
    return list(
        Violation.objects.filter(**lookups).order_by("-date", "-id").values_list("id", flat=True)
    )


def got(client, url) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


@pytest.mark.parametrize(
    "url", ["/api/violations/", "/api/risk/snapshots/", "/api/alert-deliveries/"]
)
def test_anonymous_users_are_refused(client, url):
    assert client.get(url).status_code in (401, 403)


def test_alert_deliveries_are_for_staff_only(logged_in, staff):
    cast = cast_build()
    (violation,) = breaches(cast, 1)
    channel = AlertChannel.objects.create(portfolio=cast.portfolio, name="ops", kind="email")
    AlertDelivery.objects.create(channel=channel, violation=violation, subject="breach", body="b")
    assert logged_in.get("/api/alert-deliveries/").status_code == 403
    rows = staff.get("/api/alert-deliveries/").json()["results"]
    assert [(r["channel"], r["kind"], r["violation"], r["status"]) for r in rows] == [
        ("ops", "email", violation.pk, "pending")
    ]
    assert staff.get("/api/alert-deliveries/?status=sent").json()["count"] == 0
    assert staff.get("/api/alert-deliveries/?channel=ops&kind=email").json()["count"] == 1
    assert staff.get("/api/alert-deliveries/?kind=sms").json()["count"] == 0
    assert staff.get("/api/alert-deliveries/?kind=pigeon").status_code == 400


def test_each_violation_filter_narrows_the_list_as_documented(logged_in):
    cast = cast_build(days=10)
    breaches(cast, 30)
    url = "/api/violations/?page_size=100"
    assert got(logged_in, url) == vids()
    assert got(logged_in, url + "&severity=high") == vids(severity="high")
    assert got(logged_in, url + "&status=resolved") == vids(status="resolved")
    assert got(logged_in, url + "&scope=position") == vids(limit__scope="position")
    assert got(logged_in, url + "&strategy=momo") == vids(strategy=cast.momo)
    assert got(logged_in, url + f"&strategy={cast.carry.pk}") == vids(strategy=cast.carry)
    assert got(logged_in, url + "&ticker=aapl") == vids(instrument__ticker="AAPL")
    assert got(logged_in, url + "&limit=strategy-limit") == vids(limit__name="strategy-limit")
    window = got(logged_in, url + f"&start={cast.day(3)}&end={cast.day(5)}")
    assert window == vids(date__gte=cast.day(3), date__lte=cast.day(5)) and 0 < len(window) < 30
    mix = got(logged_in, url + "&severity=high&status=open&scope=strategy")
    assert mix == vids(severity="high", status="open", limit__scope="strategy") and mix
    row = logged_in.get(url + "&scope=position").json()["results"][0]
    assert (row["limit"], row["scope"], row["metric"], row["ticker"]) == (
        "position-limit", "position", "leverage", "AAPL",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("query", "named"),
    [("severity=huge", "severity"), ("scope=galaxy", "scope"), ("start=2020-02-30", "start"),
     ("strategy_name=momo", "strategy_name"), ("ordering=severity", "ordering")],
)  # fmt: skip
def test_a_bad_violation_query_is_a_400_naming_the_parameter(logged_in, query, named):
    response = logged_in.get(f"/api/violations/?{query}")
    assert response.status_code == 400 and list(response.json()) == [named]


def test_risk_snapshots_carry_every_stored_measure(logged_in):
    cast = cast_build(days=5)
    rows = logged_in.get(f"/api/risk/snapshots/?portfolio={cast.portfolio.pk}").json()["results"]
    assert [r["date"] for r in rows] == [str(cast.day(i)) for i in (4, 3, 2, 1, 0)]
    latest = rows[0]
    stored = PortfolioSnapshot.objects.get(date=cast.day(4))
    for measure in ("volatility", "var_95", "var_99", "cvar_95", "cvar_99",
                    "diversification_ratio", "max_correlation", "concentration_top5",
                    "leverage", "drawdown", "exposure_scale"):  # fmt: skip
        assert latest[measure] == getattr(stored, measure), measure
    assert latest["risk"] == {"var_95_parametric": 0.021}
    window = logged_in.get(f"/api/risk/snapshots/?start={cast.day(1)}&end={cast.day(2)}").json()
    assert [r["date"] for r in window["results"]] == [str(cast.day(2)), str(cast.day(1))]


def test_a_measure_not_yet_filled_is_null_not_nan(logged_in):
    cast = cast_build(days=2)
    PortfolioSnapshot.objects.filter(date=cast.day(1)).update(var_95=None, volatility=float("nan"))
    row = logged_in.get("/api/risk/snapshots/").json()["results"][0]
    assert row["var_95"] is None and row["volatility"] is None


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize(
    "url", ["/api/violations/", "/api/risk/snapshots/", "/api/alert-deliveries/"]
)
def test_query_counts_do_not_grow_with_the_rows(staff, django_assert_num_queries, rows, url):
    cast = cast_build(days=rows)
    violations = breaches(cast, rows)
    channel = AlertChannel.objects.create(name="ops", kind="email")
    AlertDelivery.objects.bulk_create(
        AlertDelivery(channel=channel, violation=v, subject="s", body="b") for v in violations
    )
    # session, user, count, page; violations one more: the changes their reviews linked
    with django_assert_num_queries(5 if url == "/api/violations/" else 4):
        assert staff.get(url).status_code == 200
