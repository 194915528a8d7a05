"""Price providers: where raw daily bars come from.

Every provider returns a raw long frame (``BAR_COLUMNS`` + ``row``, optionally ``note``)
that has NOT been validated: callers pass it to ``engine.bars.validate_bars`` with the
provider's ``source``, so every provider's bad bars go through the same rules. No Django
import here, so providers are testable without a database.

- ``bundled``: real daily adjusted closes of 20 S&P 500 stocks and the S&P 500 index
  (``SP500``, the benchmark), 1990-01-02 to 2022-12-28, copied from skfolio
  (``data/README.md``). Closes only: open/high/low/volume are NaN.
- ``csv``: a user's file, long (``date,ticker,close[,open,high,low,volume]``) or wide
  (``date,<TICKER>,...`` of closes); the layout is detected from the header.
- ``yfinance``: Yahoo Finance's public v8 chart endpoint (the one the ``yfinance`` package
  uses), adjusted for splits and dividends. Needs internet; tests inject ``fetch_json``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import quote
from urllib.request import Request, urlopen
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from portfolio.csv_reader import DEFAULT_MAX_BYTES, RAW_COLUMNS, read_price_csv
from portfolio.engine.bars import VALUE_COLUMNS, parse_dates, wide_to_long

DATA_DIR = Path(__file__).resolve().parent / "data"
BENCHMARK = "SP500"


class ProviderError(Exception):
    """A provider could not deliver data (network, remote error, malformed response)."""


@dataclass(frozen=True)
class InstrumentInfo:
    ticker: str
    name: str
    sector: str
    asset_class: str
    multiplier: float
    is_benchmark: bool


class PriceProvider(Protocol):
    name: str
    source: str  # file path, URL or "bundled": what BarIssue.source and messages show
    # True for a file a user hands in: its tickers become instruments only when they
    # exist already or are named explicitly (``--add-tickers``)
    user_file: bool

    def fetch(
        self,
        *,
        tickers: list[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        """Raw long frame (``BAR_COLUMNS`` + ``row``), not yet validated."""

    def instruments(self) -> list[InstrumentInfo]:
        """Metadata for the tickers this provider knows."""


def provider_for(
    name: str,
    *,
    csv_path: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 20.0,
) -> PriceProvider:
    """The provider called ``name``: bundled, csv (needs ``csv_path``; files larger than
    ``max_bytes`` are refused) or yfinance (``timeout``: seconds for each request, connect
    and every read)."""
    if name == "bundled":
        return BundledProvider()
    if name == "csv":
        if not csv_path:
            raise ValueError("the csv price provider needs csv_path (a file to read)")
        return CsvProvider(csv_path, max_bytes=max_bytes)
    if name == "yfinance":
        return YFinanceProvider(timeout=timeout)
    raise ValueError(f"unknown price provider {name!r}; known: bundled, csv, yfinance")


def _select(
    raw: pd.DataFrame, tickers: list[str] | None, start: date | None, end: date | None
) -> pd.DataFrame:
    """Rows for ``tickers`` within [start, end]. Unparseable dates are kept, so validation
    reports them instead of their silently disappearing."""
    keep = np.ones(len(raw), dtype=bool)
    if tickers is not None:
        keep &= raw["ticker"].isin(tickers).to_numpy()
    if start is not None or end is not None:
        dates = parse_dates(raw["date"])
        if start is not None:
            keep &= ~(dates < pd.Timestamp(start)).to_numpy()
        if end is not None:
            keep &= ~(dates > pd.Timestamp(end)).to_numpy()
    return raw[keep].reset_index(drop=True)


# --- bundled ---------------------------------------------------------------------------

# Parsed once per process: the bundled files are read by every test session and update.
_CACHE: dict[str, object] = {}


def closes_frame() -> pd.DataFrame:
    """The bundled closes, wide: DatetimeIndex "date" ascending, 21 float columns (20 stocks
    and SP500) in ticker order. A copy: callers may modify it."""
    return _bundled()[0].copy()


def bundled_instruments() -> list[InstrumentInfo]:
    if "instruments" not in _CACHE:
        table = pd.read_csv(DATA_DIR / "instruments.csv", dtype=str, keep_default_na=False)
        _CACHE["instruments"] = [
            InstrumentInfo(
                ticker=r.ticker,
                name=r.name,
                sector=r.sector,
                asset_class=r.asset_class,
                multiplier=float(r.multiplier),
                is_benchmark=r.is_benchmark.lower() == "true",
            )
            for r in table.itertuples(index=False)
        ]
    return list(_CACHE["instruments"])


def _bundled() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(wide closes, raw long frame), parsed on first use."""
    if "bundled" not in _CACHE:
        stocks = pd.read_csv(DATA_DIR / "sp500_dataset.csv.gz")
        index = pd.read_csv(DATA_DIR / "sp500_index.csv.gz")
        long = pd.concat(
            [wide_to_long(stocks, date_column="Date"), wide_to_long(index, date_column="Date")],
            ignore_index=True,
        )
        long["date"] = pd.to_datetime(long["date"], format="%Y-%m-%d")
        wide = stocks.merge(index, on="Date", how="outer")
        wide.index = pd.DatetimeIndex(pd.to_datetime(wide.pop("Date")), name="date")
        wide = wide[sorted(wide.columns)].astype(float).sort_index()
        _CACHE["bundled"] = (wide, long)
    return _CACHE["bundled"]


class BundledProvider:
    """The skfolio S&P 500 sample shipped in ``portfolio/data`` (see module docstring)."""

    name = "bundled"
    source = "bundled"
    user_file = False

    def fetch(
        self,
        *,
        tickers: list[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        return _select(_bundled()[1], tickers, start, end)

    def instruments(self) -> list[InstrumentInfo]:
        return bundled_instruments()

    def closes_frame(self) -> pd.DataFrame:
        return closes_frame()


# --- csv -------------------------------------------------------------------------------


class CsvProvider:
    """A CSV file (optionally .gz), long or wide, detected from the header. Long files may
    carry other columns; they are ignored. Cells are read as text and converted here, so a
    cell that is not a number blanks that row's close (with a note naming the cell) and
    validation rejects the row under ``close_missing`` instead of pandas failing."""

    name = "csv"
    user_file = True  # tickers it names are not trusted to become instruments

    def __init__(self, path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.source = str(path)
        self.max_bytes = max_bytes
        self._raw: pd.DataFrame | None = None

    def fetch(
        self,
        *,
        tickers: list[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        return _select(self._read(), tickers, start, end)

    def instruments(self) -> list[InstrumentInfo]:
        tickers = sorted(set(self._read()["ticker"].str.strip()) - {""})
        return [InstrumentInfo(t, t, "Unknown", "equity", 1.0, False) for t in tickers]

    def _read(self) -> pd.DataFrame:
        if self._raw is None:
            self._raw = read_price_csv(self.path, source=self.source, max_bytes=self.max_bytes)
        return self._raw


# --- Yahoo Finance ----------------------------------------------------------------------

YAHOO_CHART = "https://query1.finance.yahoo.com/v8/finance/chart"
YAHOO_SYMBOLS = {BENCHMARK: "^GSPC"}  # our ticker -> Yahoo's symbol, where they differ
YAHOO_ASSET_CLASSES = {
    "EQUITY": "equity",
    "ETF": "etf",
    "INDEX": "index",
    "FUTURE": "future",
    "CURRENCY": "fx",
    "CRYPTOCURRENCY": "crypto",
}
DEFAULT_START = date(1990, 1, 1)
_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)


def yahoo_chart_url(symbol: str, start: date, end: date, *, base: str = YAHOO_CHART) -> str:
    """Daily bars from ``start`` to ``end`` inclusive (period2 is exclusive, so end + 1 day;
    both at midnight UTC)."""
    p1 = _epoch(start)
    p2 = _epoch(end + datetime.timedelta(days=1))
    return (
        f"{base}/{quote(symbol, safe='')}?period1={p1}&period2={p2}"
        "&interval=1d&events=div,splits&includeAdjustedClose=true"
    )


def _epoch(day: date) -> int:
    return int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp())


def urllib_fetch_json(url: str, *, timeout: float = 20.0) -> dict:
    """GET ``url`` and decode JSON. Yahoo explains a 404 in a JSON body, which is returned
    so the caller can report Yahoo's own description. ``timeout`` bounds the connect and
    each read, so a server that accepts and never answers fails the fetch instead of
    holding the update (and its lock) forever."""
    request = Request(url, headers={"User-Agent": _USER_AGENT, "Accept": "application/json"})
    try:
        with urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except HTTPError as exc:
        try:
            return json.loads(exc.read())
        except ValueError:
            raise ProviderError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except TimeoutError as exc:
        raise ProviderError(f"{url}: no answer within {timeout:g} s") from exc
    except URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ProviderError(f"{url}: no answer within {timeout:g} s") from exc
        raise ProviderError(f"{url}: cannot connect ({exc.reason})") from exc
    except (OSError, ValueError) as exc:
        raise ProviderError(f"{url}: {exc}") from exc


def yahoo_chart_frame(payload: dict, *, ticker: str) -> tuple[pd.DataFrame, dict]:
    """(raw long frame, meta) from a v8 chart response. Dates are the exchange's local
    dates; close is the adjusted close and open/high/low are scaled by adjclose/close so
    the whole bar is adjusted alike. Nulls stay NaN for validation to reject."""
    chart = payload.get("chart") if isinstance(payload, dict) else None
    if not isinstance(chart, dict):
        raise ProviderError(f"Yahoo Finance {ticker}: response has no 'chart' object")
    if chart.get("error"):
        err = chart["error"]
        what = err.get("description") or err.get("code") if isinstance(err, dict) else err
        raise ProviderError(f"Yahoo Finance {ticker}: {what}")
    result = (chart.get("result") or [None])[0]
    if not isinstance(result, dict):
        raise ProviderError(f"Yahoo Finance {ticker}: response has no result")
    meta = result.get("meta") or {}
    stamps = result.get("timestamp") or []
    try:
        quote_ = result["indicators"]["quote"][0] if stamps else {}
        adj = (result["indicators"].get("adjclose") or [{}])[0].get("adjclose") if stamps else []
        columns = {k: _floats(quote_.get(k), len(stamps)) for k in VALUE_COLUMNS}
        adjclose = _floats(adj, len(stamps)) if adj else columns["close"]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProviderError(f"Yahoo Finance {ticker}: malformed indicators ({exc})") from exc
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = adjclose / columns["close"]
    return pd.DataFrame(
        {
            "date": _local_dates(stamps, meta),
            "ticker": ticker,
            "open": columns["open"] * factor,
            "high": columns["high"] * factor,
            "low": columns["low"] * factor,
            "close": adjclose,
            "volume": columns["volume"],
            "row": np.arange(1, len(stamps) + 1),
            "note": "",
        },
        columns=list(RAW_COLUMNS),
    ), meta


def _floats(values, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    out = np.array(values, dtype=float)  # None -> nan
    if out.shape != (n,):
        raise ValueError(f"{len(values)} values for {n} timestamps")
    return out


def _local_dates(stamps: list[int], meta: dict) -> pd.Series:
    utc = pd.to_datetime(pd.Series(stamps, dtype="int64"), unit="s", utc=True)
    try:
        local = utc.dt.tz_convert(ZoneInfo(meta["exchangeTimezoneName"]))
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        local = utc + pd.Timedelta(seconds=int(meta.get("gmtoffset") or 0))
    return local.dt.tz_localize(None).dt.normalize()


class YFinanceProvider:
    """Yahoo Finance daily bars, one request per ticker. ``tickers`` defaults to the bundled
    universe (``SP500`` is fetched as ``^GSPC``); ``end`` defaults to today."""

    name = "yfinance"
    source = YAHOO_CHART
    user_file = False

    def __init__(
        self,
        *,
        fetch_json: Callable[[str], dict] | None = None,
        tickers: list[str] | None = None,
        timeout: float = 20.0,
        base_url: str = YAHOO_CHART,
    ) -> None:
        self._fetch_json = fetch_json or (lambda url: urllib_fetch_json(url, timeout=timeout))
        self._tickers = tickers
        self._base_url = base_url
        self.timeout = timeout
        self._meta: dict[str, dict] = {}

    def fetch(
        self,
        *,
        tickers: list[str] | None = None,
        start: date | None = None,
        end: date | None = None,
    ) -> pd.DataFrame:
        wanted = tickers or self._tickers or [i.ticker for i in bundled_instruments()]
        start, end = start or DEFAULT_START, end or date.today()
        frames = []
        for ticker in wanted:
            url = yahoo_chart_url(
                YAHOO_SYMBOLS.get(ticker, ticker), start, end, base=self._base_url
            )
            frame, self._meta[ticker] = yahoo_chart_frame(self._fetch_json(url), ticker=ticker)
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=list(RAW_COLUMNS))
        return pd.concat(frames, ignore_index=True)

    def instruments(self) -> list[InstrumentInfo]:
        """Bundled metadata where known; otherwise what Yahoo's meta says."""
        known = {i.ticker: i for i in bundled_instruments()}
        tickers = self._tickers or list(self._meta) or list(known)
        return [known.get(t) or self._info_from_meta(t) for t in tickers]

    def _info_from_meta(self, ticker: str) -> InstrumentInfo:
        meta = self._meta.get(ticker, {})
        name = meta.get("longName") or meta.get("shortName") or ticker
        kind = YAHOO_ASSET_CLASSES.get(str(meta.get("instrumentType", "")).upper(), "equity")
        return InstrumentInfo(ticker, name, "Unknown", kind, 1.0, False)
