"""Progress of long work (``quantsite.progress``): the line's numbers on a fake clock, a
terminal's single updating line, a log's periodic plain lines, and the commands that
write it."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import OutputWrapper

from portfolio.models import Portfolio, PortfolioSnapshot
from quantsite.progress import Progress, duration_text, progress_line

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "strategy_allocation.yaml"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_line_gives_done_of_total_the_rate_and_the_time_left():
    # 4,000 of 8,063 dates in 5 s: 800 dates/s, 4,063 left / 800 = 5.08 s -> "5 s left"
    line = progress_line(label="applying", unit="dates", done=4000, total=8063, elapsed=5.0)
    assert line == "applying: 4,000/8,063 dates (49.6%), 800 dates/s, 5 s left"


def test_the_line_has_no_rate_before_the_first_unit_and_says_done_at_the_end():
    assert progress_line(label="a", unit="bars", done=0, total=50, elapsed=3.0) == (
        "a: 0/50 bars (0.0%)"
    )
    # 50 bars in 125 s: 0.4 bars/s, shown rounded to 0
    assert progress_line(label="a", unit="bars", done=50, total=50, elapsed=125.0) == (
        "a: 50/50 bars (100.0%), 0 bars/s, done in 2 min 05 s"
    )


def test_durations_read_in_seconds_minutes_and_hours():
    assert [duration_text(s) for s in (4.4, 59.6, 61, 3599, 3725)] == [
        "4 s",
        "1 min 00 s",
        "1 min 01 s",
        "59 min 59 s",
        "1 h 02 min",
    ]


def test_on_a_terminal_one_line_is_rewritten_in_place_and_ended_once():
    out, clock = StringIO(), FakeClock()
    progress = Progress(out, label="applying", tty=True, clock=clock)
    for done in (0, 100, 200):
        clock.now += 1.0
        progress(done, 200)
    text = out.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("\n")
    # the clock starts at the call with 0: 100 dates 1 s later, 100/s, 100 left -> 1 s left
    assert "\rapplying: 100/200 dates (50.0%), 100 dates/s, 1 s left" in text
    assert text.rstrip().endswith("200/200 dates (100.0%), 100 dates/s, done in 2 s")


def test_a_terminal_line_cut_short_is_ended_by_close():
    out = StringIO()
    progress = Progress(out, label="x", tty=True, clock=FakeClock())
    progress(1, 10)
    progress.close()
    progress.close()
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_off_a_terminal_a_plain_line_comes_every_tenth_and_at_the_end():
    out, clock = StringIO(), FakeClock()
    progress = Progress(out, label="applying", tty=False, clock=clock, every_seconds=1e9)
    for done in range(0, 1001, 25):  # 41 calls, 0.1 s apart
        clock.now += 0.1
        progress(done, 1000)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    done = [int(line.split(": ")[1].split("/")[0].replace(",", "")) for line in lines]
    assert done == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]


def test_off_a_terminal_a_slow_run_also_writes_every_few_seconds():
    out, clock = StringIO(), FakeClock()
    progress = Progress(out, label="a", tty=False, clock=clock, every_seconds=5.0)
    for done in range(0, 10):  # 1 % of the total per 2 s: never a new tenth
        clock.now += 2.0
        progress(done, 1000)
    done = [int(line.split(": ")[1].split("/")[0]) for line in out.getvalue().splitlines()]
    assert done == [0, 3, 6, 9]  # at 0 s, then the first call 5 s or more after the last


@pytest.mark.django_db
def test_the_backtest_command_writes_progress_lines_to_a_log(settings):
    settings.QUANTSITE_DATES_PER_COMMIT = 10
    out = StringIO()
    call_command("backtest", config=str(DEMO), start="1995-01-03", end="1995-06-30", stdout=out)
    portfolio = Portfolio.objects.get(is_backtest=True)
    n = PortfolioSnapshot.objects.filter(portfolio=portfolio).count()
    lines = [x for x in out.getvalue().splitlines() if x.startswith("backtest: applying")]
    assert lines[0] == f"backtest: applying: 0/{n} dates (0.0%)"
    assert lines[-1].startswith(f"backtest: applying: {n}/{n} dates (100.0%), ")
    assert "done in" in lines[-1]
    done = [int(x.split(": ")[2].split("/")[0]) for x in lines]
    assert done == sorted(done) and len(done) == len(set(done)) >= 3
    assert all(d % 10 == 0 for d in done[:-1])  # after whole committed chunks of 10 dates
    assert "final equity" in out.getvalue()


@pytest.mark.django_db
def test_the_load_prices_command_writes_the_bars_stored(tmp_path):
    csv = tmp_path / "good.csv"
    csv.write_text("date,ticker,close\n2020-01-02,ZZZ,10\n2020-01-03,ZZZ,11\n")
    out = StringIO()
    call_command("load_prices", provider="csv", file=str(csv), add_tickers="ZZZ", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "storing prices: 0/2 bars (0.0%)"
    assert lines[1].startswith("storing prices: 2/2 bars (100.0%)")
    assert lines[2].startswith("added 2 bars")


@pytest.mark.django_db
def test_the_export_command_writes_the_files_written(tmp_path):
    call_command("load_config", allocation=str(DEMO), stdout=StringIO())
    call_command("run_update", as_of="1990-01-31", stdout=StringIO())
    out = StringIO()
    call_command("export", "--table", "all", "--format", "csv", "--out", str(tmp_path), stdout=out)
    lines = out.getvalue().splitlines()
    files = sorted(tmp_path.iterdir())
    assert lines[0] == f"export: writing: 0/{len(files)} files (0.0%)" and len(files) >= 4
    assert lines[-1].startswith(f"export: writing: {len(files)}/{len(files)} files (100.0%)")
    assert sum(line.startswith("wrote ") for line in lines) == len(files)


@pytest.mark.django_db
def test_the_run_update_command_writes_the_dates_applied():
    call_command("load_config", allocation=str(DEMO), stdout=StringIO())
    out = StringIO()
    call_command("run_update", as_of="1990-01-31", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "update: applying: 0/22 dates (0.0%)"
    assert lines[1].startswith("update: applying: 22/22 dates (100.0%), ")
    assert lines[2] == "update success: added 0 bars, applied 22 bar dates"


def test_through_a_commands_stdout_the_terminal_line_gets_no_extra_newline():
    out = StringIO()
    progress = Progress(OutputWrapper(out), label="a", tty=True, clock=FakeClock())
    progress(1, 3)
    progress(2, 3)
    assert "\n" not in out.getvalue() and out.getvalue().count("\r") == 2
    progress(3, 3)
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_the_rate_counts_from_the_work_starting_not_from_the_setup_before_it():
    """A replay reports 0 after its price load and signals (100 s here), then 500 dates in
    10 s: 50 dates/s and 10 s left at the half-way point, not 500 / 105 s. A second
    portfolio starting again at 0 restarts the clock."""
    out, clock = StringIO(), FakeClock()
    progress = Progress(out, label="applying", tty=False, clock=clock)
    clock.now += 100.0
    progress(0, 1000)
    clock.now += 10.0
    progress(500, 1000)
    assert out.getvalue().splitlines()[-1] == (
        "applying: 500/1,000 dates (50.0%), 50 dates/s, 10 s left"
    )
    clock.now += 300.0
    progress(0, 200)
    clock.now += 2.0
    progress(200, 200)
    assert out.getvalue().splitlines()[-1].endswith("100 dates/s, done in 2 s")
