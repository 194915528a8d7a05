"""Trade approval through the one update path: a gated strategy's orders wait for a review,
fill at the next bar when approved, expire (recorded) when not, and the stored reviews
make a replay trade exactly as the live path did (DESIGN "Live equals replay")."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from operations import update as update_service
from operations.config import portfolio_configure
from operations.digest import portfolio_tables, stored_fields, tables_diff, tables_digest
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.engine.errors import ConfigError
from portfolio.feeds import BundledProvider
from portfolio.models import ConfigChange, PendingOrder, Portfolio, Strategy, Trade
from portfolio.services.approvals import order_review
from portfolio.services.books import pending_dates
from portfolio.services.controls import Origin
from portfolio.services.prices import prices_load
from risk.services import risk_spec_read

ROOT = Path(__file__).resolve().parents[2]
END = date(1990, 6, 29)
WARM = date(1990, 3, 1)  # mean_reversion_20 trades from here on
GATED = "mean_reversion_20"
ALICE = Origin("alice", "page", "10.0.0.7")


@pytest.fixture
def bars(db, settings):
    settings.QUANTSITE_ALERT_MAX_AGE_DAYS = 100_000
    prices_load(provider=BundledProvider(), strict=True, until=END)
    return selectors.price_frame(end=END)


def _configure() -> Portfolio:
    data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
    for s in data["strategies"]:
        if s["name"] == GATED:
            s["approval_required"] = True
    spec = parse_allocation_config(data, source="approval test")
    risk = risk_spec_read(ROOT / "config" / "risk_limits.yaml")
    return portfolio_configure(spec=spec, risk=risk, source="approval test")


def _dates(portfolio, closes):
    return pending_dates(portfolio, closes, selectors.tradable_tickers(), END)


def _awaiting(portfolio) -> PendingOrder:
    portfolio.refresh_from_db()
    return PendingOrder.objects.get(
        strategy__portfolio=portfolio, strategy__name=GATED, decided_on=portfolio.last_applied_date
    )


def _signal_trades(portfolio, day):
    return Trade.objects.filter(
        strategy__portfolio=portfolio, strategy__name=GATED, date=day, reason="signal"
    )


@pytest.mark.django_db
def test_the_yaml_key_gates_only_that_strategy(bars):
    portfolio = _configure()
    gated = dict(portfolio.strategies.values_list("name", "approval_required"))
    assert gated.pop(GATED) is True and not any(gated.values())
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.approval_required"):
        data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
        data["strategies"][0]["approval_required"] = "yes"
        parse_allocation_config(data, source="approval test")


@pytest.mark.django_db
def test_approved_orders_fill_at_the_next_bar_unapproved_ones_expire_and_say_why(bars):
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=WARM)
    first = _awaiting(portfolio)
    assert first.status == "pending" and first.orders and first.targets
    assert {o["side"] for o in first.orders} <= {"buy", "sell"}
    assert not ConfigChange.objects.filter(field__startswith="orders of").exists()
    # the decisions before it, made in the same run, could not be approved: they expired
    earlier = PendingOrder.objects.filter(strategy__name=GATED, decided_on__lt=first.decided_on)
    assert earlier.exists()
    assert set(earlier.values_list("status", "cause")) == {
        ("expired", "not approved before the next bar")
    }
    assert not Trade.objects.filter(strategy__name=GATED, reason="signal").exists()

    order_review(order_id=first.pk, decision="approve", origin=ALICE, note="looks right")
    audit = ConfigChange.objects.get(field=f"orders of {first.decided_on}")
    assert (audit.actor, audit.source, audit.client_ip) == ("alice", "page", "10.0.0.7")
    assert (audit.before, audit.after) == ("pending", "approved: looks right")

    nxt, after = _dates(portfolio, bars)[:2]
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=nxt)
    first.refresh_from_db()
    fills = _signal_trades(portfolio, nxt)
    assert (first.status, first.resolved_on, first.cause) == ("filled", nxt, "approved")
    assert first.fills_count == fills.count() > 0
    assert sorted(fills.values_list("instrument__ticker", flat=True)) == sorted(
        o["ticker"] for o in first.orders
    )
    # the next decision is not reviewed: it expires at the bar after, nothing fills
    second = _awaiting(portfolio)
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=after)
    second.refresh_from_db()
    assert (second.status, second.resolved_on) == ("expired", after)
    assert not _signal_trades(portfolio, after).exists()
    # too late now: refused, nothing changed
    with pytest.raises(ConfigError, match="is expired, not awaiting a review"):
        order_review(order_id=second.pk, decision="approve", origin=ALICE)
    second.refresh_from_db()
    assert second.status == "expired" and second.reviewed_by == ""
    # the other books are not gated: nothing of theirs waits
    assert not PendingOrder.objects.exclude(strategy__name=GATED).exists()


@pytest.mark.django_db
def test_a_rejected_order_never_fills_and_a_review_is_checked(bars):
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=WARM)
    order = _awaiting(portfolio)
    with pytest.raises(ConfigError, match="decision: must be approve or reject"):
        order_review(order_id=order.pk, decision="yes", origin=ALICE)
    with pytest.raises(ConfigError, match="note: at most 2000 characters"):
        order_review(order_id=order.pk, decision="reject", origin=ALICE, note="x" * 2001)
    order.refresh_from_db()
    assert order.status == "pending"
    order_review(order_id=order.pk, decision="reject", origin=ALICE)
    with pytest.raises(ConfigError, match="is rejected, not awaiting a review"):
        order_review(order_id=order.pk, decision="approve", origin=ALICE)
    nxt = _dates(portfolio, bars)[0]
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=nxt)
    order.refresh_from_db()
    assert (order.status, order.resolved_on, order.reviewed_by) == ("rejected", nxt, "alice")
    assert not _signal_trades(portfolio, nxt).exists()


@pytest.mark.django_db
def test_a_review_that_lands_while_the_bar_is_computed_is_applied(bars, monkeypatch):
    """The update computes the chunk again when a review was stored after it loaded the
    book and before its commit (the portfolio row lock orders the two)."""
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=WARM)
    order = _awaiting(portfolio)
    real, calls = update_service.apply_dates, []

    def reviewed_meanwhile(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the book is loaded: an operator approves now
            order_review(order_id=order.pk, decision="approve", origin=ALICE)
        return real(*args, **kwargs)

    monkeypatch.setattr(update_service, "apply_dates", reviewed_meanwhile)
    nxt = _dates(portfolio, bars)[0]
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=nxt)
    assert len(calls) == 2  # computed again with the review
    order.refresh_from_db()
    assert order.status == "filled" and _signal_trades(portfolio, nxt).count() == order.fills_count


def _live(bars) -> tuple[dict, list[tuple]]:
    """Bar by bar from WARM to END, approving every second decision and rejecting every
    fifth; the tables and the reviews as given."""
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=WARM)
    reviews = []
    for i, day in enumerate(_dates(portfolio, bars)):
        portfolio.refresh_from_db()
        order = PendingOrder.objects.filter(
            strategy__name=GATED, decided_on=portfolio.last_applied_date
        ).first()  # none when the decision would not trade or the book is paused
        decision = "reject" if i % 5 == 4 else "approve" if i % 2 == 0 else None
        if order is not None and decision:
            order_review(order_id=order.pk, decision=decision, origin=ALICE, note=f"n{i}")
            order.refresh_from_db()
            reviews.append((order.decided_on, order.status, order.review_note))
        portfolio_apply(portfolio=portfolio, closes=bars, as_of=day)
    return _tables_and_drop(portfolio), reviews


def _tables_and_drop(portfolio) -> dict:
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date == END
    tables = portfolio_tables(portfolio)
    portfolio.delete()
    ConfigChange.objects.all().delete()
    return tables


@pytest.mark.slow
@pytest.mark.django_db
def test_a_replay_that_reads_the_stored_reviews_leaves_the_same_rows(bars):
    live, reviews = _live(bars)
    at = 1 + stored_fields(PendingOrder).index("status")  # rows start with the strategy
    statuses = {row[at] for row in live["pending_order"]}
    assert {"filled", "rejected", "expired"} <= statuses, statuses
    for chunk in (10**6, 7, 1):
        portfolio = _configure()
        gated = Strategy.objects.get(portfolio=portfolio, name=GATED)
        PendingOrder.objects.bulk_create(
            PendingOrder(
                strategy=gated, decided_on=d, status=s, reviewed_by="alice", review_note=note
            )
            for d, s, note in reviews
        )
        portfolio_apply(portfolio=portfolio, closes=bars, as_of=END, chunk_dates=chunk)
        tables = _tables_and_drop(portfolio)
        assert tables_digest(tables) == tables_digest(live), (chunk, tables_diff(live, tables))


# --- the surfaces: strategy page, configuration page, admin, API --------------------------


@pytest.fixture
def staff(logged_in, user):
    user.is_staff = user.is_superuser = True
    user.save()
    return logged_in


@pytest.fixture
def awaiting(bars):
    portfolio = _configure()
    portfolio_apply(portfolio=portfolio, closes=bars, as_of=WARM)
    return _awaiting(portfolio)


PAGE = f"/strategy/{GATED}/"


def test_the_strategy_page_shows_the_orders_and_staff_approve_them_there(staff, awaiting):
    html = staff.get(PAGE).content.decode()
    assert 'id="awaiting-orders"' in html and 'id="order-approve"' in html
    for line in awaiting.orders:
        assert f"<td>{line['ticker']}</td>" in html
    assert "not approved before the next bar" in html  # the earlier decisions' outcomes
    url = f"{PAGE}orders/{awaiting.pk}/review/"
    response = staff.post(url, {"decision": "approve", "note": "ok"}, follow=True)
    assert response.redirect_chain[-1][0] == f"{PAGE}#orders"
    assert any(
        "approved: they fill at the next bar" in str(m) for m in response.context["messages"]
    )
    awaiting.refresh_from_db()
    assert (awaiting.status, awaiting.reviewed_by, awaiting.review_note) == (
        "approved",
        "quant",
        "ok",
    )
    assert ConfigChange.objects.get(field=f"orders of {awaiting.decided_on}").source == "page"
    # a second review is refused with the reason, nothing changes
    response = staff.post(url, {"decision": "reject"}, follow=True)
    assert any("Refused, nothing changed" in str(m) for m in response.context["messages"])
    awaiting.refresh_from_db()
    assert awaiting.status == "approved"


def test_a_plain_user_sees_the_orders_but_cannot_review_them(logged_in, awaiting):
    html = logged_in.get(PAGE).content.decode()
    assert 'id="awaiting-orders"' in html and 'id="order-approve"' not in html
    response = logged_in.post(f"{PAGE}orders/{awaiting.pk}/review/", {"decision": "approve"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    awaiting.refresh_from_db()
    assert awaiting.status == "pending"


def test_approval_is_switched_on_the_configuration_page_and_audited(staff, bars):
    portfolio = _configure()
    other = Strategy.objects.get(portfolio=portfolio, name="momentum_60")
    response = staff.post(
        f"/config/{portfolio.pk}/approval/", {"strategy": other.pk, "required": "1"}, follow=True
    )
    assert any("wait for an approval" in str(m) for m in response.context["messages"])
    other.refresh_from_db()
    assert other.approval_required is True
    change = ConfigChange.objects.get(object_repr="momentum_60", field="approval_required")
    assert (change.before, change.after, change.actor, change.source) == (
        False,
        True,
        "quant",
        "page",
    )
    html = staff.get("/config/").content.decode()
    assert 'id="approval-momentum_60" title="Stop requiring approval">Turn off' in html


def test_the_admin_approves_through_the_same_service(staff, awaiting):
    response = staff.post(
        "/admin/portfolio/pendingorder/",
        {"action": "orders_approve", "_selected_action": [awaiting.pk]},
        follow=True,
    )
    assert response.status_code == 200
    awaiting.refresh_from_db()
    assert awaiting.status == "approved"
    assert ConfigChange.objects.get(field=f"orders of {awaiting.decided_on}").source == "admin"
    # the rows themselves are history: no change form, no delete
    page = staff.get(f"/admin/portfolio/pendingorder/{awaiting.pk}/change/").content.decode()
    assert 'name="_save"' not in page


def test_the_api_lists_the_orders_and_staff_review_them(logged_in, user, awaiting):
    listed = logged_in.get("/api/orders/", {"status": "pending"}).json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [(r["id"], r["strategy"], r["status"]) for r in rows] == [
        (awaiting.pk, GATED, "pending")
    ]
    assert logged_in.get("/api/orders/", {"status": "maybe"}).status_code == 400
    url = f"/api/orders/{awaiting.pk}/approve/"
    assert logged_in.post(url, {}, content_type="application/json").status_code == 403
    awaiting.refresh_from_db()
    assert awaiting.status == "pending"
    user.is_staff = True
    user.save()
    key = {"Idempotency-Key": "approve-1"}
    done = logged_in.post(url, {"note": "via api"}, content_type="application/json", headers=key)
    assert done.status_code == 200 and done.json()["status"] == "approved"
    # a retry with the same key replays the answer instead of a 409 "already reviewed"
    retry = logged_in.post(url, {"note": "via api"}, content_type="application/json", headers=key)
    assert retry.status_code == 200 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == done.json()
    assert ConfigChange.objects.get(field=f"orders of {awaiting.decided_on}").source == "api"
    again = logged_in.post(
        f"/api/orders/{awaiting.pk}/reject/", {}, content_type="application/json"
    )
    assert again.status_code == 409 and "not awaiting a review" in again.json()["detail"]


def test_a_backtest_approves_every_decision_and_says_so(bars, tmp_path):
    from operations.backtest import backtest_run

    data = yaml.safe_load((ROOT / "config" / "strategy_allocation.yaml").read_text())
    for s in data["strategies"]:
        if s["name"] == GATED:
            s["approval_required"] = True
    config = tmp_path / "gated.yaml"
    config.write_text(yaml.safe_dump(data))
    summary = backtest_run(config_path=config, end=END)
    assert summary["approval_ignored"] == [GATED]
    trades = Trade.objects.filter(
        strategy__portfolio__is_backtest=True, strategy__name=GATED, reason="signal"
    )
    assert trades.exists() and not PendingOrder.objects.exists()
