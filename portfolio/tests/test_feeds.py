"""Price providers (feeds.py): the bundled data, CSV layout detection and Yahoo parsing from
recorded responses. No database and no network: Yahoo is only ever a fixture file."""

from __future__ import annotations

import copy
import datetime
import json
import time
from pathlib import Path

import numpy as np
import pytest

from portfolio.engine.bars import BAR_COLUMNS, validate_bars
from portfolio.engine.errors import DataValidationError
from portfolio.feeds import (
    BundledProvider,
    CsvProvider,
    ProviderError,
    YFinanceProvider,
    closes_frame,
    provider_for,
)

D = datetime.date
FIXTURES = Path(__file__).parent / "fixtures"
AAPL_URL = (
    "https://query1.finance.yahoo.com/v8/finance/chart/AAPL?period1=1704067200"
    "&period2=1705449600&interval=1d&events=div,splits&includeAdjustedClose=true"
)  # 2024-01-01T00:00Z to 2024-01-17T00:00Z: end date 2024-01-16 inclusive


def fixture_json(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def recorded(payload: dict, expect_url: str | None = None, asked: list | None = None):
    """A fetch_json that serves ``payload`` and records (and optionally checks) the URL."""

    def fetch_json(url: str) -> dict:
        if asked is not None:
            asked.append(url)
        if expect_url is not None:
            assert url == expect_url
        return copy.deepcopy(payload)

    return fetch_json


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- bundled ---------------------------------------------------------------------------


def test_the_bundled_provider_gives_21_tickers_by_8313_dates_with_no_issues():
    provider = BundledProvider()
    known = {i.ticker for i in provider.instruments()}
    result = validate_bars(provider.fetch(), source=provider.source, known_tickers=known)
    assert result.issues == ()
    bars = result.bars
    assert bars["ticker"].nunique() == 21 and bars["date"].nunique() == 8313
    assert len(bars) == 21 * 8313
    assert (bars["date"].min(), bars["date"].max()) == (D(1990, 1, 2), D(2022, 12, 28))
    first = bars[bars["date"] == D(1990, 1, 2)].set_index("ticker")["close"]
    np.testing.assert_allclose([first["AAPL"], first["SP500"]], [0.264, 359.69])


def test_the_bundled_instruments_carry_real_gics_sectors_and_sp500_is_the_benchmark():
    infos = {i.ticker: i for i in BundledProvider().instruments()}
    assert len(infos) == 21
    assert {t: infos[t].sector for t in ("AAPL", "BAC", "BBY", "CVX", "GE", "JNJ", "KO")} == {
        "AAPL": "Information Technology",
        "BAC": "Financials",
        "BBY": "Consumer Discretionary",
        "CVX": "Energy",
        "GE": "Industrials",
        "JNJ": "Health Care",
        "KO": "Consumer Staples",
    }
    assert infos["MSFT"].name == "Microsoft Corporation"
    assert [t for t, i in infos.items() if i.is_benchmark] == ["SP500"]
    assert (infos["SP500"].asset_class, infos["SP500"].sector) == ("index", "Index")
    assert all(
        i.asset_class == "equity" and i.multiplier == 1.0 for t, i in infos.items() if t != "SP500"
    )


def test_closes_frame_is_the_wide_bundled_history_including_the_benchmark():
    wide = closes_frame()
    assert wide.shape == (8313, 21) and "SP500" in wide.columns
    assert wide.index.is_monotonic_increasing and str(wide.index.dtype) == "datetime64[ns]"
    assert list(wide.columns) == sorted(wide.columns)
    np.testing.assert_allclose(wide.loc["1990-01-03", ["AAPL", "SP500"]], [0.266, 358.76])
    wide.iloc[0, 0] = -1.0  # a copy: the cache is not changed
    assert closes_frame().iloc[0, 0] == pytest.approx(0.264)
    assert BundledProvider().closes_frame().shape == (8313, 21)


def test_the_bundled_provider_filters_by_ticker_and_inclusive_dates():
    raw = BundledProvider().fetch(tickers=["SP500", "KO"], start=D(2022, 12, 1), end=D(2022, 12, 2))
    assert sorted(zip(raw["ticker"], raw["date"].dt.date, strict=True)) == [
        ("KO", D(2022, 12, 1)),
        ("KO", D(2022, 12, 2)),
        ("SP500", D(2022, 12, 1)),
        ("SP500", D(2022, 12, 2)),
    ]


def test_validating_the_whole_bundled_history_takes_well_under_two_seconds():
    raw = BundledProvider().fetch()
    started = time.perf_counter()
    validate_bars(raw, source="bundled", strict=True)
    assert time.perf_counter() - started < 2.0


# --- csv ---------------------------------------------------------------------------------


def test_a_long_csv_is_detected_with_optional_ohlcv_and_any_header_case(tmp_path):
    path = write(
        tmp_path,
        "Date,Ticker,Open,High,Low,Close,Volume,Note\n"
        "2020-01-02,AAA,9.5,10.5,9,10,1000,x\n"
        "2020-01-03,AAA,10,11.5,9.8,11,1200,y\n",
    )
    provider = CsvProvider(path)
    raw = provider.fetch()
    assert list(raw["row"]) == [1, 2]
    result = validate_bars(raw, source=provider.source, strict=True)
    bars = result.bars
    np.testing.assert_allclose(
        bars[["open", "high", "low", "close", "volume"]],
        [[9.5, 10.5, 9, 10, 1000], [10, 11.5, 9.8, 11, 1200]],
    )
    assert [(i.ticker, i.sector, i.asset_class, i.multiplier) for i in provider.instruments()] == [
        ("AAA", "Unknown", "equity", 1.0)
    ]


def test_a_wide_csv_is_detected_and_late_listing_is_not_an_error(tmp_path):
    path = write(
        tmp_path,
        "date,AAA,BBB\n2020-01-02,10,\n2020-01-03,11,\n2020-01-06,12,50\n2020-01-07,13,51\n",
    )
    provider = CsvProvider(path)
    result = validate_bars(provider.fetch(), source=provider.source, strict=True)
    assert result.issues == ()
    assert list(result.bars["ticker"]) == ["AAA"] * 4 + ["BBB"] * 2
    assert [i.ticker for i in provider.instruments()] == ["AAA", "BBB"]


def test_wide_csv_rows_are_file_data_rows_even_across_blank_lines(tmp_path):
    path = write(tmp_path, "Date,AAA\n2020-01-02,10\n\n2020-01-03,abc\n2020-01-06,12\n")
    provider = CsvProvider(path)
    result = validate_bars(provider.fetch(), source=provider.source)
    missing = result.issues[0]
    assert (missing.rule, missing.action, missing.row) == ("close_missing", "rejected", 3)
    assert missing.message() == (
        f"{path} row 3 (AAA 2020-01-03) field close: close 'abc' is not a number "
        "(rule close_missing); bar rejected"
    )


def test_a_cell_that_is_not_a_number_rejects_its_row_naming_the_cell(tmp_path):
    path = write(
        tmp_path,
        "date,ticker,close,volume\n2020-01-02,AAA,10,5\n"
        "2020-01-03,AAA,11,lots\n2020-01-06,AAA,1O,7\n",
    )
    provider = CsvProvider(path)
    issues = validate_bars(provider.fetch(), source=provider.source).issues
    assert [(i.rule, i.row, i.field, i.detail) for i in issues if i.row] == [
        ("close_missing", 2, "close", "volume 'lots' is not a number"),
        ("close_missing", 3, "close", "close '1O' is not a number"),
    ]


def test_a_strict_csv_load_names_the_file_the_row_and_the_rule(tmp_path):
    path = write(
        tmp_path,
        "date,ticker,close\n2020-01-02,AAA,10\n2020-01-03,AAA,nan\n2020-01-06,AAA,12\n",
        name="bad.csv",
    )
    provider = CsvProvider(path)
    with pytest.raises(DataValidationError) as err:
        validate_bars(provider.fetch(), source=provider.source, strict=True)
    assert str(err.value) == (
        f"{path} row 2: field close: close 'nan' is not a number (rule close_missing)"
    )


@pytest.mark.parametrize("header", ["a,b", "date,ticker,price", "date,AAA,close", "date,,AAA"])
def test_an_unrecognised_header_is_refused_listing_the_expected_headers(tmp_path, header):
    path = write(tmp_path, header + "\n2020-01-02,1,2\n")
    with pytest.raises(DataValidationError) as err:
        CsvProvider(path).fetch()
    assert err.value.where == str(path)
    assert "date,ticker,close[,open,high,low,volume]" in err.value.rule
    assert "date,<TICKER>" in err.value.rule


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "file not found"),
        ("", "file is empty"),
        ("date,AAA\n2020-01-02,1,2\n", "not a readable CSV file"),
    ],
)
def test_an_unreadable_file_is_a_validation_error_naming_it(tmp_path, text, said):
    path = tmp_path / "prices.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DataValidationError, match=said) as err:
        CsvProvider(path).fetch()
    assert err.value.where == str(path)


def test_the_csv_provider_filters_dates_but_keeps_unparseable_ones_for_validation(tmp_path):
    path = write(
        tmp_path, "date,ticker,close\n2020-01-02,AAA,10\n2020-01-03,AAA,11\nsomeday,AAA,12\n"
    )
    raw = CsvProvider(path).fetch(start=D(2020, 1, 3))
    assert list(raw["row"]) == [2, 3]


# --- Yahoo Finance -----------------------------------------------------------------------


def test_yahoo_bars_are_parsed_from_the_recorded_response_with_adjusted_prices():
    asked: list[str] = []
    provider = YFinanceProvider(
        fetch_json=recorded(fixture_json("yahoo_chart_AAPL.json"), AAPL_URL, asked)
    )
    raw = provider.fetch(tickers=["AAPL"], start=D(2024, 1, 1), end=D(2024, 1, 16))
    assert asked == [AAPL_URL]
    assert list(raw.columns)[:7] == list(BAR_COLUMNS) and list(raw["row"]) == list(range(1, 11))
    # 14:30 UTC is 09:30 in New York: the exchange's dates, Jan 15 (MLK day) absent
    assert list(raw["date"].dt.date) == [D(2024, 1, d) for d in (2, 3, 4, 5, 8, 9, 10, 11, 12, 16)]
    first = raw.iloc[0]
    # Jan 2: close 185.64, adjclose 183.546 -> factor 0.98872; open 187.15 * 0.98872
    np.testing.assert_allclose(first["close"], 183.5459747314453)
    np.testing.assert_allclose(
        first[["open", "high", "low"]].astype(float),
        [187.15 * 0.98872, 188.44 * 0.98872, 183.885 * 0.98872],
        rtol=1e-6,
    )
    assert first["volume"] == 82488700
    info = {i.ticker: i for i in provider.instruments()}["AAPL"]
    assert (info.sector, info.name) == ("Information Technology", "Apple Inc.")


def test_a_null_close_from_yahoo_becomes_a_recorded_rejection():
    provider = YFinanceProvider(fetch_json=recorded(fixture_json("yahoo_chart_AAPL.json")))
    raw = provider.fetch(tickers=["AAPL"], start=D(2024, 1, 1), end=D(2024, 1, 16))
    result = validate_bars(raw, source=provider.source)
    # alone in the data, AAPL's Jan 10 is not a gap: no other ticker has that date
    assert [(i.rule, i.action, i.row, i.date) for i in result.issues] == [
        ("close_missing", "rejected", 7, D(2024, 1, 10))
    ]
    assert len(result.bars) == 9
    assert (
        result.issues[0]
        .message()
        .startswith(
            "https://query1.finance.yahoo.com/v8/finance/chart row 7 (AAPL 2024-01-10) field close"
        )
    )
    with pytest.raises(DataValidationError, match="row 7: field close"):
        validate_bars(raw, source=provider.source, strict=True)


def test_yahoo_dates_are_the_exchange_local_dates_not_utc_dates():
    payload = fixture_json("yahoo_chart_AAPL.json")
    # 2024-01-03T03:00Z is 22:00 on Jan 2 in New York
    payload["chart"]["result"][0]["timestamp"][0] = 1704250800
    provider = YFinanceProvider(fetch_json=recorded(payload))
    raw = provider.fetch(tickers=["AAPL"], start=D(2024, 1, 1), end=D(2024, 1, 16))
    assert raw["date"].iloc[0].date() == D(2024, 1, 2)


def test_a_yahoo_error_response_raises_a_provider_error_naming_ticker_and_reason():
    provider = YFinanceProvider(fetch_json=recorded(fixture_json("yahoo_chart_error.json")))
    with pytest.raises(ProviderError) as err:
        provider.fetch(tickers=["AAPL"], start=D(2024, 1, 1), end=D(2024, 1, 16))
    assert str(err.value) == "Yahoo Finance AAPL: No data found, symbol may be delisted"


def test_the_benchmark_is_asked_for_under_yahoos_symbol_and_keeps_our_ticker():
    asked: list[str] = []
    payload = fixture_json("yahoo_chart_AAPL.json")
    provider = YFinanceProvider(fetch_json=recorded(payload, asked=asked))
    raw = provider.fetch(tickers=["SP500"], start=D(2024, 1, 1), end=D(2024, 1, 16))
    assert asked[0].startswith("https://query1.finance.yahoo.com/v8/finance/chart/%5EGSPC?")
    assert set(raw["ticker"]) == {"SP500"}


def test_a_ticker_yahoo_knows_but_we_do_not_takes_its_name_from_yahoos_meta():
    provider = YFinanceProvider(
        fetch_json=recorded(fixture_json("yahoo_chart_AAPL.json")), tickers=["XYZ"]
    )
    provider.fetch(start=D(2024, 1, 1), end=D(2024, 1, 16))
    assert provider.instruments()[0] == provider.instruments()[0].__class__(
        "XYZ", "Apple Inc.", "Unknown", "equity", 1.0, False
    )


# --- factory -----------------------------------------------------------------------------


def test_provider_for_builds_each_known_provider(tmp_path):
    assert isinstance(provider_for("bundled"), BundledProvider)
    assert isinstance(provider_for("yfinance"), YFinanceProvider)
    csv = provider_for("csv", csv_path=str(tmp_path / "x.csv"))
    assert isinstance(csv, CsvProvider) and csv.source == str(tmp_path / "x.csv")


def test_provider_for_refuses_an_unknown_name_listing_the_known_ones():
    with pytest.raises(ValueError, match="known: bundled, csv, yfinance"):
        provider_for("bloomberg")
    with pytest.raises(ValueError, match="csv_path"):
        provider_for("csv")
