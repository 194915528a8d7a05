"""Outages (issue 15, point 5): a price feed that raises, hangs, is unreachable, returns
NaN rows or goes stale; PostgreSQL lost mid-run or unreachable; Redis down. Each gives a
clear recorded reason and a clean message, leaves nothing half-written, and the next run
recovers to the rows an uninterrupted run leaves (``operations.digest``). SMTP and
webhook outages are in ``risk/tests/test_delivery_outages.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection
from django.utils import timezone

from operations import update as update_service
from operations.config import portfolio_configure
from operations.digest import portfolio_digest
from operations.update import portfolio_apply, run_update
from portfolio import selectors
from portfolio.feeds import BundledProvider, ProviderError, YFinanceProvider
from portfolio.models import DataIssue, Portfolio, PriceBar, RunLock, UpdateRun
from portfolio.services.config import allocation_spec_read
from portfolio.services.prices import prices_load, provider_default

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "strategy_allocation.yaml"
FIRST, LAST = date(1990, 6, 29), date(1990, 7, 31)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts connections and never answers: a feed (or SMTP server) that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


class RaisingProvider:
    name, source = "yfinance", "https://feed.example"

    def __init__(self, exc: Exception):
        self.exc = exc

    def fetch(self, **kwargs):
        raise self.exc

    def instruments(self):
        return BundledProvider().instruments()


class FrameProvider(RaisingProvider):
    """The bundled bars of [start, end], with the closes of ``nan_on`` blanked."""

    def __init__(self, start: date, end: date, nan_on: date | None = None):
        self.start, self.end, self.nan_on = start, end, nan_on

    def fetch(self, **kwargs):
        raw = BundledProvider().fetch(start=self.start, end=self.end)
        if self.nan_on is not None:
            raw.loc[pd.to_datetime(raw["date"]).dt.date == self.nan_on, "close"] = float("nan")
        return raw


def _live_demo() -> Portfolio:
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")
    run_update(as_of=FIRST, load_prices=False)
    return portfolio


def _reference_digest(as_of: date) -> str:
    """What an uninterrupted run leaves: the same book applied in one go."""
    clean = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo", name="clean")
    portfolio_apply(portfolio=clean, closes=selectors.price_frame(end=as_of), as_of=as_of)
    return portfolio_digest(clean)


def _use_provider(monkeypatch, provider):
    monkeypatch.setattr(update_service, "provider_default", lambda: provider)


# --- the price feed --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_feed_that_raises_fails_the_run_with_its_reason_and_the_next_run_recovers(
    monkeypatch,
):
    portfolio = _live_demo()
    before = portfolio_digest(portfolio)
    _use_provider(monkeypatch, RaisingProvider(ProviderError("feed.example: HTTP 502 Bad Gateway")))

    with pytest.raises(CommandError) as caught:
        call_command("run_update", as_of=LAST.isoformat())

    assert str(caught.value) == (
        "update failed: price feed unavailable: feed.example: HTTP 502 Bad Gateway"
    )
    run = UpdateRun.objects.latest("pk")
    assert (run.status, run.error) == (
        "failed",
        "ProviderError: feed.example: HTTP 502 Bad Gateway",
    )
    assert run.finished_at is not None and not RunLock.objects.exists()
    assert portfolio_digest(portfolio) == before  # nothing half-written

    _use_provider(monkeypatch, BundledProvider())
    assert run_update(as_of=LAST).status == "success"
    assert portfolio_digest(portfolio) == _reference_digest(LAST)


@pytest.mark.django_db
def test_a_feed_that_hangs_times_out_after_the_setting_and_fails_the_run(monkeypatch, settings):
    settings.QUANTSITE_DATA_PROVIDER = "yfinance"
    settings.QUANTSITE_PRICE_TIMEOUT_SECONDS = 1
    assert provider_default().timeout == 1
    hang = SilentServer()
    feed = YFinanceProvider(timeout=1, tickers=["AAPL"], base_url=f"http://127.0.0.1:{hang.port}")
    _use_provider(monkeypatch, feed)
    portfolio = _live_demo()
    before = portfolio_digest(portfolio)

    started = time.monotonic()
    try:
        with pytest.raises(ProviderError, match=r"no answer within 1 s"):
            run_update(as_of=LAST)
    finally:
        hang.close()

    assert time.monotonic() - started < 5
    run = UpdateRun.objects.latest("pk")
    assert run.status == "failed" and "no answer within 1 s" in run.error
    assert portfolio_digest(portfolio) == before and not RunLock.objects.exists()


@pytest.mark.django_db
def test_yfinance_unreachable_is_one_clear_line_from_the_command(monkeypatch):
    port = _closed_port()
    feed = YFinanceProvider(timeout=2, tickers=["AAPL"], base_url=f"http://127.0.0.1:{port}")
    _use_provider(monkeypatch, feed)
    _live_demo()

    with pytest.raises(CommandError) as caught:
        call_command("run_update", as_of=LAST.isoformat())

    message = str(caught.value)
    assert message.startswith(
        f"update failed: price feed unavailable: http://127.0.0.1:{port}/AAPL"
    )
    assert "cannot connect" in message and "refused" in message.lower()
    assert "\n" not in message
    assert UpdateRun.objects.latest("pk").status == "failed"


@pytest.mark.django_db
def test_nan_rows_are_recorded_and_held_back_and_the_next_run_recovers(monkeypatch):
    PriceBar.objects.filter(date__gt=FIRST).delete()  # the feed has not delivered July yet
    portfolio = _live_demo()
    nan_day = date(1990, 7, 2)

    _use_provider(monkeypatch, FrameProvider(nan_day, nan_day, nan_on=nan_day))
    result = run_update(as_of=LAST)

    assert (result.status, result.bars_added, result.dates_applied) == ("success", 0, 0)
    issues = DataIssue.objects.filter(date=nan_day)
    assert issues.count() == 21 and set(issues.values_list("action", flat=True)) == {"rejected"}
    assert not PriceBar.objects.filter(date=nan_day).exists()
    portfolio.refresh_from_db()
    assert portfolio.last_applied_date == FIRST

    _use_provider(monkeypatch, FrameProvider(nan_day, LAST))
    assert run_update(as_of=LAST).dates_applied == 21  # July 1990 trading days
    assert portfolio_digest(portfolio) == _reference_digest(LAST)


# --- stale prices ------------------------------------------------------------------------


@pytest.fixture
def worker(monkeypatch):
    class Fresh:
        status, timestamp = "Idle", timezone.now()

    monkeypatch.setattr("django_q.status.Stat.get_all", staticmethod(lambda broker=None: [Fresh]))


@pytest.mark.django_db
def test_stale_prices_warn_on_the_pages_and_in_readyz_which_stays_ready(
    client, logged_in, worker, settings
):
    _live_demo()
    UpdateRun.objects.create(status="success", finished_at=timezone.now())
    settings.QUANTSITE_DATA_PROVIDER = "yfinance"  # a feed expected to deliver today's bars
    newest = PriceBar.objects.latest("date").date
    days = (timezone.localdate() - newest).days

    page = logged_in.get("/").content.decode()
    ready = client.get("/readyz")

    assert f"Prices are stale: the newest bar is {newest:%Y-%m-%d}, {days} days ago" in page
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["warnings"] == {"prices": "stale"}

    settings.QUANTSITE_STALE_DATA_DAYS = days  # not older than the limit: no warning
    assert 'id="stale-prices"' not in logged_in.get("/").content.decode()
    assert "warnings" not in client.get("/readyz").json()
    settings.QUANTSITE_STALE_DATA_DAYS, settings.QUANTSITE_DATA_PROVIDER = 1, "bundled"
    assert 'id="stale-prices"' not in logged_in.get("/").content.decode()


# --- Redis -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_down_the_update_still_applies_the_push_is_logged_and_readyz_says_so(
    client, worker, settings, caplog, django_capture_on_commit_callbacks
):
    url = f"redis://127.0.0.1:{_closed_port()}/13"
    settings.REDIS_URL = url
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [url]}}
    }
    portfolio = portfolio_configure(spec=allocation_spec_read(DEMO), source="demo")

    with django_capture_on_commit_callbacks(execute=True):
        result = run_update(as_of=FIRST, load_prices=False)

    portfolio.refresh_from_db()
    assert result.status == "success" and portfolio.last_applied_date == FIRST
    assert f"live push for portfolio {portfolio.pk} failed" in caplog.text
    UpdateRun.objects.create(status="success", finished_at=timezone.now())
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] == "unreachable"
    assert ready.json()["reason"] == "redis unreachable"


# --- PostgreSQL --------------------------------------------------------------------------


def _connection_lost() -> None:
    """Lose the connection for real on PostgreSQL (its backend terminated from another
    connection); on SQLite, which has no server to lose, raise what Django would."""
    if connection.vendor != "postgresql":
        raise OperationalError("server closed the connection unexpectedly")
    import psycopg

    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.fixture(scope="module")
def bars(django_db_blocker):
    """A transactional test ends by emptying every table: put the prices back once the
    module is done (module scope, so this runs after the test's own teardown)."""
    yield
    with django_db_blocker.unblock():
        if not PriceBar.objects.exists():
            prices_load(provider=BundledProvider(), strict=True)


@pytest.mark.django_db(transaction=True)
def test_the_database_lost_mid_run_fails_the_run_keeps_whole_chunks_and_the_next_run_resumes(
    bars, monkeypatch, settings
):
    settings.QUANTSITE_DATES_PER_COMMIT = 10
    portfolio = _live_demo()
    real_save = update_service.chunk_save
    calls = {"n": 0}

    def save_then_lose(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # mid-chunk: after the first chunk committed
            _connection_lost()
        return real_save(*args, **kwargs)

    monkeypatch.setattr(update_service, "chunk_save", save_then_lose)
    with pytest.raises(CommandError) as caught:
        call_command("run_update", as_of=LAST.isoformat(), no_prices=True)

    assert str(caught.value).startswith("update failed: database unavailable: ")
    assert "\n" not in str(caught.value)
    run = UpdateRun.objects.latest("pk")
    assert run.status == "failed" and run.error.startswith("OperationalError: ")
    assert not RunLock.objects.exists()  # released on a new connection
    portfolio.refresh_from_db()
    first_chunk_end = selectors.price_frame(end=LAST).loc[str(FIRST) :].index[10].date()
    assert portfolio.last_applied_date == first_chunk_end  # the second chunk rolled back

    monkeypatch.setattr(update_service, "chunk_save", real_save)
    assert run_update(as_of=LAST, load_prices=False).status == "success"
    assert portfolio_digest(portfolio) == _reference_digest(LAST)


@pytest.mark.slow  # two manage.py processes, ~10 s each on a busy machine
def test_an_unreachable_database_at_startup_is_one_line_and_no_traceback(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_closed_port()}/qs_e_gone",
        "QUANTSITE_DATA_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "quantsite.settings",
    }
    for command in (["run_update"], ["migrate", "--noinput"]):
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, done.stderr
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert "Connection refused" in lines[0]
        assert lines[0].startswith(
            "CommandError: update failed: database unavailable: "
            if command == ["run_update"]
            else "database unavailable: "
        )
