"""Exports on a small momentum portfolio run over the bundled prices: each table equals the
stored rows, the CSV and Excel files read back to the same values, the reads take a fixed
number of queries, the views need a login and the command refuses bad input."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, date, datetime
from io import StringIO

import openpyxl
import pandas as pd
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from operations.config import portfolio_configure
from operations.update import portfolio_apply
from portfolio import selectors
from portfolio.engine.config_schema import parse_allocation_config
from portfolio.models import (
    Portfolio,
    PortfolioSnapshot,
    Position,
    PriceBar,
    StrategySnapshot,
    Trade,
)
from reporting import exports
from reporting.engine import tables
from risk.models import RiskLimit, Violation

pytestmark = pytest.mark.django_db
END = date(1990, 6, 29)


def small_config(name: str) -> dict:
    def book(lookback, allocation):
        params = {"lookback": lookback, "sma_filter": None, "top_n": 3, "frequency": "monthly"}
        return {
            "name": f"momentum_{lookback}",
            "allocation": allocation,
            "signal_type": "MomentumSignalV2",
            "parameters": params,
        }

    return {
        "portfolio": {
            "name": name,
            "initial_capital": 100000,
            "commission_bps": 1,
            "slippage_bps": 2,
            "rebalancing": {"method": "periodic", "frequency": "monthly"},
        },
        "strategies": [book(20, 0.6), book(40, 0.4)],
    }


def make_portfolio(name="export test", as_of=END, backtest=False) -> Portfolio:
    spec = parse_allocation_config(small_config(name), source="test.yaml")
    portfolio = portfolio_configure(spec=spec, source="test.yaml", is_backtest=backtest)
    portfolio_apply(portfolio=portfolio, closes=selectors.price_frame(end=as_of), as_of=as_of)
    portfolio.refresh_from_db()
    return portfolio


@pytest.fixture
def portfolio() -> Portfolio:
    return make_portfolio()


def add_violation(portfolio: Portfolio, **fields) -> Violation:
    limit, _ = RiskLimit.objects.get_or_create(
        portfolio=portfolio,
        name="max_drawdown",
        defaults=dict(
            scope="portfolio",
            metric="drawdown",
            direction="min",
            threshold=-0.15,
            severity="high",
            action="alert_only",
        ),
    )
    values = dict(
        portfolio=portfolio,
        limit=limit,
        severity="high",
        date=date(1990, 5, 1),
        value=-0.1612345678901234,
        threshold=-0.15,
        action_taken="alert_only",
    )
    return Violation.objects.create(**(values | fields))


def read_csv(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def cell(value) -> str:
    """How the CSV writes one stored value."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    return repr(float(value)) if not isinstance(value, str) else value


# --- the tables equal the stored rows ------------------------------------------------------


def test_the_trades_table_is_every_fill_as_stored(portfolio):
    frame = exports.trades_frame(portfolio)
    stored = Trade.objects.filter(strategy__portfolio=portfolio).order_by("date", "id")
    assert list(frame.columns) == list(tables.TRADE_COLUMNS)
    assert len(frame) == stored.count() > 20
    for row, t in zip(frame.itertuples(index=False), stored, strict=True):
        assert (row.date, row.strategy, row.ticker, row.side, row.reason) == (
            t.date,
            t.strategy.name,
            t.instrument.ticker,
            t.side,
            t.reason,
        )
        for col in tables.TRADE_NUMBERS:
            assert getattr(row, col) == float(getattr(t, col))  # exact, not approximately
    assert frame["cost"].gt(0).all()  # 1 bp commission + 2 bp slippage on every fill


def test_the_equity_table_holds_the_portfolio_each_book_and_the_benchmark(portfolio):
    frame = exports.equity_frame(portfolio)
    assert list(frame.columns) == [
        "date",
        "portfolio_equity",
        "momentum_20_equity",
        "momentum_40_equity",
        "momentum_20_weight",
        "momentum_40_weight",
        "SP500_close",
    ]
    snaps = list(PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"))
    assert list(frame["date"]) == [s.date for s in snaps]
    assert list(frame["portfolio_equity"]) == [float(s.equity) for s in snaps]
    books = frame["momentum_20_equity"] + frame["momentum_40_equity"]
    assert books.to_numpy() == pytest.approx(frame["portfolio_equity"].to_numpy(), rel=1e-12)
    last = StrategySnapshot.objects.get(strategy__name="momentum_40", date=END)
    assert frame["momentum_40_weight"].iloc[-1] == last.weight
    sp = PriceBar.objects.get(instrument__ticker="SP500", date=END)
    assert frame["SP500_close"].iloc[-1] == float(sp.close)
    assert frame["date"].iloc[0] == date(1990, 1, 2) and frame["date"].iloc[-1] == END


def test_positions_are_marked_to_the_close_of_the_last_applied_date(portfolio):
    frame = exports.positions_frame(portfolio)
    stored = list(Position.objects.filter(strategy__portfolio=portfolio))
    assert list(frame.columns) == list(tables.POSITION_COLUMNS)
    assert len(frame) == len(stored) > 0
    by_key = {(p.strategy.name, p.instrument.ticker): p for p in stored}
    for row in frame.itertuples(index=False):
        p = by_key[(row.strategy, row.ticker)]
        close = float(PriceBar.objects.get(instrument=p.instrument, date=END).close)
        assert row.quantity == float(p.quantity) and row.last_close == close
        assert row.avg_entry_price == float(p.avg_entry_price)
        assert row.entry_date == p.entry_date
        assert row.market_value == pytest.approx(float(p.quantity) * close, rel=1e-15)
        expected_pnl = (close - float(p.avg_entry_price)) * float(p.quantity)
        assert row.unrealized_pnl == pytest.approx(expected_pnl, rel=1e-12)
    # the books' unrealized P&L at the close is the sum over their positions
    snap = StrategySnapshot.objects.get(strategy__name="momentum_20", date=END)
    mine = frame[frame["strategy"] == "momentum_20"]["unrealized_pnl"].sum()
    assert mine == pytest.approx(float(snap.unrealized_pnl), rel=1e-9)


def test_risk_metrics_are_exported_per_date_and_nulls_stay_empty(portfolio):
    risk_fields = ("volatility", "var_95", "var_99", "cvar_95", "cvar_99", "max_correlation")
    PortfolioSnapshot.objects.filter(portfolio=portfolio).update(**dict.fromkeys(risk_fields))
    PortfolioSnapshot.objects.filter(portfolio=portfolio, date=END).update(
        volatility=0.1234567890123, var_95=0.021, cvar_99=0.04, max_correlation=0.87
    )
    frame = exports.risk_frame(portfolio)
    assert list(frame.columns) == list(tables.RISK_COLUMNS)
    last = frame.iloc[-1]
    assert (last["volatility"], last["var_95"], last["cvar_99"]) == (0.1234567890123, 0.021, 0.04)
    assert math.isnan(last["var_99"]) and frame["var_95"].iloc[:-1].isna().all()
    snap = PortfolioSnapshot.objects.get(portfolio=portfolio, date=END)
    assert (last["leverage"], last["drawdown"]) == (snap.leverage, snap.drawdown)
    rows = read_csv(exports.export_bytes({"risk": frame}, "csv"))
    assert rows[-1]["var_95"] == "0.021" and rows[-1]["var_99"] == "" and rows[0]["var_95"] == ""


def test_violations_carry_the_limit_strategy_ticker_and_dates(portfolio):
    strategy = portfolio.strategies.get(name="momentum_20")
    resolved = datetime(1990, 5, 8, 21, 0, tzinfo=UTC)
    add_violation(portfolio, date=date(1990, 5, 2), status="resolved", resolved_on=date(1990, 5, 8))
    Violation.objects.filter(date=date(1990, 5, 2)).update(resolved_at=resolved)
    add_violation(portfolio, date=date(1990, 5, 1), strategy=strategy, severity="critical")
    frame = exports.violations_frame(portfolio)
    assert list(frame.columns) == list(tables.VIOLATION_COLUMNS)
    first, second = frame.iloc[0], frame.iloc[1]  # date order, not the model's newest first
    assert (first["date"], first["strategy"], first["severity"]) == (
        date(1990, 5, 1),
        "momentum_20",
        "critical",
    )
    assert first["limit"] == "max_drawdown" and first["ticker"] is None
    assert first["value"] == -0.1612345678901234 and first["threshold"] == -0.15
    assert second["status"] == "resolved" and second["resolved_on"] == date(1990, 5, 8)
    assert second["resolved_at_utc"] == datetime(1990, 5, 8, 21, 0)
    rows = read_csv(exports.export_bytes({"violations": frame}, "csv"))
    assert rows[0]["strategy"] == "momentum_20" and rows[0]["ticker"] == ""
    assert rows[1]["resolved_at_utc"] == "1990-05-08T21:00:00" and rows[0]["resolved_on"] == ""


# --- fixed query counts --------------------------------------------------------------------

QUERIES = {"equity": 4, "trades": 1, "positions": 1, "risk": 1, "violations": 1}


@pytest.mark.parametrize("table", list(QUERIES))
def test_each_table_reads_with_a_fixed_number_of_queries(table, django_assert_num_queries):
    short = make_portfolio("short", as_of=date(1990, 3, 30))
    longer = make_portfolio("longer", as_of=END)
    add_violation(short)
    for _ in range(3):
        add_violation(longer)
    n_short = Trade.objects.filter(strategy__portfolio=short).count()
    assert Trade.objects.filter(strategy__portfolio=longer).count() > 2 * n_short
    sizes = []
    for p in (short, longer):
        with django_assert_num_queries(QUERIES[table]):
            sizes.append(len(exports.TABLES[table](p)))
    assert sizes[0] < sizes[1] or table == "positions"


# --- the files read back -------------------------------------------------------------------


def test_the_trades_csv_reads_back_to_the_stored_values(portfolio):
    data = exports.export_bytes({"trades": exports.trades_frame(portfolio)}, "csv")
    rows = read_csv(data)
    stored = Trade.objects.filter(strategy__portfolio=portfolio).order_by("date", "id")
    assert data.startswith(b"date,strategy,ticker,side,quantity,price,value,cost,")
    assert len(rows) == stored.count()
    for row, t in zip(rows, stored, strict=True):
        assert row["date"] == t.date.isoformat() and row["ticker"] == t.instrument.ticker
        assert row["strategy"] == t.strategy.name and row["side"] == t.side
        for col in tables.TRADE_NUMBERS:
            assert row[col] == cell(getattr(t, col))
            assert float(row[col]) == float(getattr(t, col))


def test_the_workbook_has_one_formatted_sheet_per_table(portfolio):
    add_violation(portfolio)
    frames = exports.export_frames(portfolio, "all")
    wb = openpyxl.load_workbook(io.BytesIO(exports.export_bytes(frames, "xlsx")))
    assert wb.sheetnames == ["equity", "trades", "positions", "risk", "violations"]
    for name in wb.sheetnames:
        ws = wb[name]
        header = [c.value for c in ws[1]]
        assert header == list(frames[name].columns)
        assert all(c.font.b for c in ws[1])
        assert ws.freeze_panes == "A2" and ws.max_row == len(frames[name]) + 1
        assert ws.column_dimensions["A"].width >= len(header[0])
    trades = wb["trades"]
    stored = list(Trade.objects.filter(strategy__portfolio=portfolio).order_by("date", "id"))
    for xl_row, t in zip(trades.iter_rows(min_row=2, values_only=True), stored, strict=True):
        assert xl_row[0] == datetime.combine(t.date, datetime.min.time())  # a real date
        assert xl_row[1:4] == (t.strategy.name, t.instrument.ticker, t.side)
        # openpyxl writes a double with 16 significant digits ("%.16g"; Excel shows 15)
        assert xl_row[4:9] == tuple(
            float(f"{getattr(t, c):.16g}")
            for c in ("quantity", "price", "value", "cost", "realized_pnl")
        )
    assert trades["A2"].is_date and trades["A2"].number_format == "yyyy-mm-dd"
    assert trades["E2"].data_type == "n"
    risk = wb["risk"]
    assert risk["E2"].value is None  # var_95 not computed: an empty cell, not "nan"
    v = wb["violations"]
    assert [c.value for c in v[2]][:3] == [datetime(1990, 5, 1), "max_drawdown", "high"]
    assert v["F2"].value == -0.1612345678901234


def test_text_that_looks_like_a_formula_stays_text():
    frame = tables.trades_table(
        [(date(2021, 1, 4), '=HYPERLINK("x")', "@A1", "buy", 1, 1, 1, 0, 0, "-1+1", "=1+1")]
    )
    rows = read_csv(exports.export_bytes({"trades": frame}, "csv"))
    assert rows[0]["strategy"] == '\'=HYPERLINK("x")' and rows[0]["ticker"] == "'@A1"
    assert rows[0]["detail"] == "'=1+1"
    ws = openpyxl.load_workbook(io.BytesIO(exports.export_bytes({"t": frame}, "xlsx")))["t"]
    assert ws["B2"].value == '=HYPERLINK("x")' and ws["B2"].data_type == "s"


# --- views ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/export/trades.csv", "/export/risk.xlsx", "/export/all.xlsx"])
def test_the_downloads_need_a_login(client, url, portfolio):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_csv_download_names_the_table_and_the_as_of_date(logged_in, portfolio):
    from django.urls import reverse

    url = reverse("reporting:export", kwargs={"table": "trades", "fmt": "csv"})
    response = logged_in.get(url)
    assert url == "/export/trades.csv" and response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="quantsite-trades-1990-06-29.csv"'
    )
    rows = read_csv(response.content)
    assert len(rows) == Trade.objects.filter(strategy__portfolio=portfolio).count()


def test_the_workbook_download_defaults_to_the_live_portfolio(
    logged_in, portfolio, django_assert_num_queries
):
    from django.urls import reverse

    make_portfolio("a backtest", as_of=date(1990, 2, 28), backtest=True)
    url = reverse("reporting:export-all")
    # session, user, portfolio, the row count (small: no job), then 4 + 1 + 1 + 1 + 1
    # for the tables
    with django_assert_num_queries(12):
        response = logged_in.get(url)
    assert url == "/export/all.xlsx" and response.status_code == 200
    assert response["Content-Type"] == exports.CONTENT_TYPES["xlsx"]
    assert response["Content-Disposition"].endswith('filename="quantsite-all-1990-06-29.xlsx"')
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    assert wb["equity"].max_row - 1 == PortfolioSnapshot.objects.filter(portfolio=portfolio).count()


def test_a_download_can_pick_another_portfolio_by_id(logged_in, portfolio):
    other = make_portfolio("a backtest", as_of=date(1990, 2, 28), backtest=True)
    response = logged_in.get(f"/export/equity.csv?portfolio={other.pk}")
    assert response["Content-Disposition"].endswith('"quantsite-equity-1990-02-28.csv"')
    assert read_csv(response.content)[-1]["date"] == "1990-02-28"


@pytest.mark.parametrize(
    "url, status",
    [
        ("/export/nope.csv", 404),
        ("/export/trades.pdf", 404),
        ("/export/all.csv", 404),
        ("/export/trades.csv?portfolio=999999", 404),
        ("/export/trades.csv?portfolio=abc", 400),
    ],
)
def test_bad_download_requests_are_refused(logged_in, portfolio, url, status):
    assert logged_in.get(url).status_code == status


def test_without_any_portfolio_the_download_is_not_found(logged_in):
    assert logged_in.get("/export/trades.csv").status_code == 404


# --- the export command --------------------------------------------------------------------


def test_the_command_writes_one_table_to_a_file(tmp_path, portfolio):
    out = tmp_path / "trades.csv"
    stdout = StringIO()
    call_command("export", table="trades", fmt="csv", out=str(out), stdout=stdout)
    expected = exports.export_bytes({"trades": exports.trades_frame(portfolio)}, "csv")
    assert out.read_bytes() == expected
    assert f"wrote {out}" in stdout.getvalue() and list(tmp_path.iterdir()) == [out]


def test_the_command_writes_every_table_into_a_directory_or_a_workbook(tmp_path, portfolio):
    call_command("export", "--table", "all", "--format", "csv", "--out", str(tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"quantsite-{t}-1990-06-29.csv" for t in exports.TABLES)
    book = tmp_path / "book.xlsx"
    call_command(
        "export", "--table", "all", "--format", "xlsx", "--out", str(book), "--portfolio",
        "export test",
    )  # fmt: skip
    assert openpyxl.load_workbook(book).sheetnames == list(exports.TABLES)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--table", "orders"], "argument --table: invalid choice: 'orders'"),
        (["--format", "pdf"], "argument --format: invalid choice: 'pdf'"),
        (["--out", "{tmp}/missing/t.csv"], "--out {tmp}/missing/t.csv: directory"),
        (["--out", "{tmp}/t.xlsx"], "--out {tmp}/t.xlsx: the file name must end in .csv"),
        (["--portfolio", "Nope"], "--portfolio 'Nope': no such portfolio (known: 'export test')"),
        (["--table", "all", "--out", "{tmp}/all.csv"], "must be an existing directory"),
    ],
)
def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path, portfolio, args, message):
    defaults = {"--table": "trades", "--format": "csv", "--out": "{tmp}/t.csv"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x.format(tmp=tmp_path) for kv in (defaults | given).items() for x in kv]
    with pytest.raises(CommandError) as raised:
        call_command("export", *argv)
    assert message.format(tmp=tmp_path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_the_command_says_when_there_is_no_live_portfolio(tmp_path):
    with pytest.raises(CommandError, match="--portfolio: there is no live portfolio yet"):
        call_command("export", "--table", "trades", "--out", str(tmp_path / "t.csv"))
    assert list(tmp_path.iterdir()) == []


def test_a_portfolio_without_history_exports_header_rows_only(tmp_path):
    spec = parse_allocation_config(small_config("fresh"), source="test.yaml")
    portfolio_configure(spec=spec, source="test.yaml")
    call_command("export", "--table", "all", "--format", "csv", "--out", str(tmp_path))
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5
    for f in files:
        lines = f.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1 and lines[0].startswith(("date,", "strategy,"))
    assert (tmp_path / f"quantsite-equity-{timezone.localdate().isoformat()}.csv").exists()


# --- empty cells, never "NaT" --------------------------------------------------------------


def test_an_unresolved_violation_leaves_its_resolution_cells_empty_in_csv_and_excel(portfolio):
    # The README promises empty cells: an open violation has no resolved_on and no
    # resolved_at, which pandas carries as NaT (a datetime whose isoformat() is "NaT").
    add_violation(portfolio, date=date(1990, 5, 2), status="resolved", resolved_on=date(1990, 5, 8))
    Violation.objects.filter(date=date(1990, 5, 2)).update(
        resolved_at=datetime(1990, 5, 8, 21, 0, tzinfo=UTC)
    )
    add_violation(portfolio, date=date(1990, 5, 3))  # still open
    frames = {"violations": exports.violations_frame(portfolio)}
    data = exports.export_bytes(frames, "csv")
    assert b"NaT" not in data and b"nan" not in data.lower()
    resolved, unresolved = read_csv(data)
    assert resolved["resolved_at_utc"] == "1990-05-08T21:00:00"
    assert resolved["resolved_on"] == "1990-05-08"
    assert unresolved["resolved_at_utc"] == "" and unresolved["resolved_on"] == ""
    assert unresolved["opened_at_utc"].startswith(timezone.now().date().isoformat())
    ws = openpyxl.load_workbook(io.BytesIO(exports.export_bytes(frames, "xlsx")))["violations"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert rows[0]["resolved_at_utc"] == datetime(1990, 5, 8, 21, 0)
    assert rows[1]["resolved_at_utc"] is None and rows[1]["resolved_on"] is None


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_missing_dates_of_every_kind_are_written_as_empty_cells(fmt):
    # One column per way a missing date reaches the writers: None, NaT in an object
    # column, NaT in a datetime64 column, pd.NA, and NaN in an object column.
    frame = pd.DataFrame(
        {
            "row": ["full", "empty"],
            "day": [date(2021, 1, 4), None],
            "stamp": pd.Series([datetime(2021, 1, 4, 21, 0), pd.NaT], dtype=object),
            "stamp64": pd.to_datetime(["2021-01-04 21:00", None]),
            "na": pd.Series([date(2021, 1, 5), pd.NA], dtype=object),
            "nan": pd.Series([date(2021, 1, 6), float("nan")], dtype=object),
        }
    )
    data = exports.export_bytes({"t": frame}, fmt)
    if fmt == "csv":
        first, second = read_csv(data)
        assert first == {
            "row": "full",
            "day": "2021-01-04",
            "stamp": "2021-01-04T21:00:00",
            "stamp64": "2021-01-04T21:00:00",
            "na": "2021-01-05",
            "nan": "2021-01-06",
        }
        assert second.pop("row") == "empty" and set(second.values()) == {""}
    else:
        ws = openpyxl.load_workbook(io.BytesIO(data))["t"]
        first, second = ws.iter_rows(min_row=2, values_only=True)
        day, stamp = datetime(2021, 1, 4), datetime(2021, 1, 4, 21)
        assert first[:4] == ("full", day, stamp, stamp)
        assert second == ("empty", *(None,) * 5)
