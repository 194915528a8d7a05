"""The command-line edges: backtest's JSON contract, load_prices refusing bad files,
run_update, demo_setup's admin account."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from operations.backtest import backtest_summary
from portfolio.models import DataIssue, Portfolio, PriceBar, RebalanceEvent, Trade

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "strategy_allocation.yaml"
pytestmark = pytest.mark.django_db


def test_backtest_writes_the_json_summary_scripts_rely_on(tmp_path):
    out = tmp_path / "summary.json"
    stdout = StringIO()
    call_command(
        "backtest",
        config=str(DEMO),
        start="1995-01-03",
        end="1995-06-30",
        json_out=str(out),
        stdout=stdout,
    )
    summary = json.loads(out.read_text())
    p = summary["portfolio"]
    assert p["start"] == "1995-01-03" and p["end"] == "1995-06-30"
    assert p["final_equity"] == p["equity"]["1995-06-30"]
    names = [
        "momentum_60",
        "momentum_120",
        "momentum_200",
        "mean_reversion_20",
        "trend_following_50",
    ]
    assert list(summary["strategies"]) == names
    for day, total in p["equity"].items():
        books = [summary["strategies"][n]["equity"][day] for n in names]
        assert sum(books) == pytest.approx(total, rel=1e-9)
        assert sum(summary["strategies"][n]["weight"][day] for n in names) == pytest.approx(1)
    assert summary["rebalances"] == [
        "1995-02-01",
        "1995-03-01",
        "1995-04-03",
        "1995-05-01",
        "1995-06-01",
    ]
    portfolio = Portfolio.objects.get(name=p["name"])
    assert portfolio.is_backtest
    assert summary["trades"] == Trade.objects.filter(strategy__portfolio=portfolio).count() > 0
    assert "final equity" in stdout.getvalue()


def test_a_backtest_rerun_replaces_the_previous_backtest_of_that_name(tmp_path):
    for _ in range(2):
        call_command(
            "backtest", config=str(DEMO), start="1995-01-03", end="1995-01-31", stdout=StringIO()
        )
    assert Portfolio.objects.filter(is_backtest=True).count() == 1
    assert RebalanceEvent.objects.filter(trigger="initial").count() == 1


def test_backtest_with_a_csv_uses_the_file_without_storing_its_prices(tmp_path):
    csv = tmp_path / "prices.csv"
    rows = ["date,AAA,BBB"] + [
        f"2021-{m:02d}-{d:02d},{100 + i},{50 + (i % 7)}"
        for i, (m, d) in enumerate((m, d) for m in range(1, 13) for d in (4, 11, 18, 25))
    ]
    csv.write_text("\n".join(rows) + "\n")
    config = tmp_path / "c.yaml"
    config.write_text(
        "portfolio: {name: csv test, initial_capital: 1000}\n"
        "strategies:\n"
        "  - {name: tf, allocation: 1.0, signal_type: TrendFollowingSignal,"
        " parameters: {window: 4}}\n"
    )
    out = tmp_path / "s.json"
    bars = PriceBar.objects.count()
    call_command(
        "backtest",
        config=str(config),
        data=str(csv),
        add_tickers="AAA,BBB",  # a file adds new tickers only when they are named
        json_out=str(out),
        stdout=StringIO(),
    )
    summary = json.loads(out.read_text())
    assert len(summary["portfolio"]["equity"]) == 48 and summary["trades"] > 0
    assert PriceBar.objects.count() == bars


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("2020-01-03,AAA,nan", "close"),
        ("2020-01-03,AAA,-5", "close"),
        ("2020-01-02,AAA,11", "duplicate"),
    ],
)
def test_load_prices_refuses_a_file_with_a_bad_row_and_stores_nothing(tmp_path, line, rule):
    csv = tmp_path / "bad.csv"
    csv.write_text("date,ticker,close\n2020-01-02,AAA,10\n" + line + "\n2020-01-06,AAA,12\n")
    before = (PriceBar.objects.count(), DataIssue.objects.count())
    with pytest.raises(CommandError) as err:
        call_command(
            "load_prices", provider="csv", file=str(csv), add_tickers="AAA", stdout=StringIO()
        )
    message = str(err.value)
    assert str(csv) in message and "row" in message and rule in message
    assert (PriceBar.objects.count(), DataIssue.objects.count()) == before


def test_load_prices_adds_only_new_bars_from_a_clean_file(tmp_path):
    csv = tmp_path / "good.csv"
    csv.write_text("date,ticker,close\n2020-01-02,ZZZ,10\n2020-01-03,ZZZ,11\n")
    call_command("load_prices", provider="csv", file=str(csv), add_tickers="ZZZ", stdout=StringIO())
    call_command("load_prices", provider="csv", file=str(csv), stdout=StringIO())  # ZZZ exists
    assert PriceBar.objects.filter(instrument__ticker="ZZZ").count() == 2


def test_run_update_command_reports_what_it_applied():
    call_command("load_config", allocation=str(DEMO), stdout=StringIO())
    out = StringIO()
    call_command("run_update", as_of="1990-01-31", stdout=out)
    assert "applied 22 bar dates" in out.getvalue()
    with pytest.raises(CommandError, match="expected a date"):
        call_command("run_update", as_of="31/01/1990")


def test_backtest_rejects_a_start_after_the_end():
    with pytest.raises(CommandError, match="after end"):
        call_command("backtest", config=str(DEMO), start="1995-02-01", end="1995-01-01")


def test_demo_setup_creates_one_admin_with_a_random_password_printed_once(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    PriceBar.objects.filter(date__gt=date(1990, 3, 1)).delete()  # keep the replay short
    out = StringIO()
    call_command("demo_setup", holdback=0, stdout=out)
    text = out.getvalue()
    assert "password" in text
    password = text.split("password '")[1].split("'")[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password) and len(password) >= 12
    again = StringIO()
    call_command("demo_setup", holdback=0, stdout=again)
    assert "already exists" in again.getvalue() and password not in again.getvalue()
    assert Portfolio.objects.filter(is_backtest=False).count() == 1


def test_demo_setup_uses_the_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "from-the-env-123")
    PriceBar.objects.filter(date__gt=date(1990, 2, 1)).delete()
    out = StringIO()
    call_command("demo_setup", holdback=0, stdout=out)
    assert "from-the-env-123" not in out.getvalue()
    assert get_user_model().objects.get(username="admin").check_password("from-the-env-123")


def test_a_backtest_with_risk_limits_records_the_violations_the_live_book_does(tmp_path):
    out = tmp_path / "summary.json"
    stdout = StringIO()
    risk = ROOT / "config" / "risk_limits.yaml"
    call_command(
        "backtest",
        config=str(DEMO),
        risk=str(risk),
        end="1991-06-28",
        json_out=str(out),
        stdout=stdout,
    )
    summary = json.loads(out.read_text())
    assert summary["risk_limits"] == str(risk)
    assert f"risk limits from {risk}: {len(summary['violations'])} violations" in stdout.getvalue()
    kinds = {(v["limit"], v["action"]) for v in summary["violations"]}
    assert ("strategy_max_drawdown", "pause_strategy") in kinds
    assert ("strategy_max_leverage", "reduce_positions") in kinds
    first = summary["violations"][0]
    assert set(first) == {
        "date",
        "limit",
        "severity",
        "strategy",
        "ticker",
        "action",
        "value",
        "threshold",
        "status",
        "resolved_on",
    }
    fields = ["volatility", "var_95", "var_99", "cvar_95", "cvar_99"]
    fields += ["diversification_ratio", "max_correlation"]
    assert set(summary["risk"]) == set(fields)
    assert all(len(summary["risk"][f]) > 300 for f in fields)  # every bar after the warm-up
    # the same bars applied to the live book, as the scheduler does
    call_command("load_config", stdout=StringIO())
    call_command("run_update", as_of="1991-06-28", no_prices=True, stdout=StringIO())
    live = Portfolio.objects.get(is_backtest=False)
    live_summary = backtest_summary(live)
    assert live_summary["violations"] == summary["violations"]
    assert live_summary["risk"] == summary["risk"]
    assert live_summary["portfolio"]["equity"] == summary["portfolio"]["equity"]


def test_a_backtest_without_risk_limits_says_none_applied(tmp_path):
    out = tmp_path / "summary.json"
    stdout = StringIO()
    call_command("backtest", config=str(DEMO), end="1990-06-29", json_out=str(out), stdout=stdout)
    summary = json.loads(out.read_text())
    assert summary["risk_limits"] is None and summary["violations"] == []
    assert "no risk limits applied" in stdout.getvalue()
    assert summary["risk"]["var_95"]  # measured all the same
