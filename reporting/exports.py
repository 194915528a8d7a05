"""Data exports: a portfolio's equity curves, trades, positions, risk metrics and violations
as tables (``pd.DataFrame``), and the CSV and Excel writers the download views and the
``export`` command share.

Each ``*_frame`` selector reads with a fixed number of queries (``values_list``, whatever
the number of rows) and hands the rows to ``reporting.engine.tables``, which fixes the
columns. Numbers are written as stored: Decimal money and quantities become the nearest
double and are printed with the shortest text that reads back as that double.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from typing import IO

import numpy as np
import pandas as pd
from django.utils import timezone
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from portfolio.models import Portfolio, Strategy
from reporting import selectors
from reporting.engine import tables
from risk.selectors import violation_records

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
ALL = "all"
# A writer given a ``progress`` callable calls it with the number of data rows written so
# far (over every table), every ``PROGRESS_EVERY`` rows and at the end of each table. The
# streamed CSV reads and writes pieces of that many rows too: one query a piece, so
# 10,000 (some 10 MB of fills at a time) reads 100,000 trades in about the time of one
# whole read, where pieces of 2,000 took three times as long.
Progress = Callable[[int], None]
PROGRESS_EVERY = 10_000


# --- reading ------------------------------------------------------------------------------
# Every table is built from ``reporting.selectors`` (the one read path the pages and the
# API use too) and handed to ``reporting.engine.tables``, which fixes its columns.


def _dates(values) -> list:
    """``datetime.date`` objects from a datetime64 column or index (None where NaT), as
    ``reporting.engine.tables`` expects them."""
    stamps = pd.DatetimeIndex(values)
    days = stamps.date.tolist() if len(stamps) else []
    return [None if m else d for d, m in zip(days, stamps.isna().tolist(), strict=True)]


def equity_frame(portfolio: Portfolio) -> pd.DataFrame:
    """Portfolio equity, each strategy's equity and weight, and each benchmark's close per
    snapshot date (``tables.equity_table``). 4 queries."""
    names = [s.name for s in selectors.strategy_list(portfolio=portfolio)]
    snaps = selectors.portfolio_snapshot_frame(portfolio=portfolio, fields=("date", "equity"))
    books = selectors.strategy_snapshot_frame(
        portfolio=portfolio, fields=("strategy__name", "date", "equity", "weight")
    )
    portfolio_rows = list(zip(_dates(snaps.index), snaps["equity"].tolist(), strict=True))
    strategy_rows = zip(
        books["strategy"].tolist(),
        _dates(books["date"]),
        books["equity"].tolist(),
        books["weight"].tolist(),
        strict=True,
    )
    benchmark_rows = selectors.benchmark_close_list(portfolio=portfolio)
    return tables.equity_table(portfolio_rows, list(strategy_rows), names, benchmark_rows)


def _trades_table(fills: pd.DataFrame) -> pd.DataFrame:
    fills = fills.assign(date=_dates(fills["date"]))
    rows = fills[list(tables.TRADE_COLUMNS)].itertuples(index=False, name=None)
    return tables.trades_table(list(rows))


def trades_frame(portfolio: Portfolio, strategy: Strategy | None = None) -> pd.DataFrame:
    """Every fill of the portfolio's books (or of one ``strategy``), in date order
    (``tables.trades_table``; ``selectors.trade_frame``). 1 query."""
    return _trades_table(selectors.trade_frame(portfolio=portfolio, strategy=strategy, detail=True))


def trades_frames(
    portfolio: Portfolio, strategy: Strategy | None = None, rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """``trades_frame`` in pieces of at most ``rows`` fills (``PROGRESS_EVERY`` unless
    given; ``selectors.trade_frame_pages``, one query a piece): what a writer needs to
    stream any number of trades in bounded memory. At least one piece (empty when there
    are no fills)."""
    pages = selectors.trade_frame_pages(
        portfolio=portfolio, strategy=strategy, detail=True, rows=rows or PROGRESS_EVERY
    )
    for fills in pages:
        yield _trades_table(fills)


def positions_frame(portfolio: Portfolio) -> pd.DataFrame:
    """Open positions marked to each instrument's last close on or before the portfolio's
    last applied date (``tables.positions_table``; ``selectors.position_frame``). 1 query."""
    held = selectors.position_frame(portfolio=portfolio, as_of=portfolio.last_applied_date)
    held = held.assign(entry_date=_dates(held["entry_date"]))
    columns = ["strategy", "ticker", "quantity", "avg_entry_price", "entry_date"]
    rows = held[[*columns, "multiplier", "close"]].itertuples(index=False, name=None)
    return tables.positions_table(list(rows))


def risk_frame(portfolio: Portfolio) -> pd.DataFrame:
    """Risk metrics per snapshot date (``tables.risk_table``); NULL stays NaN. 1 query."""
    snaps = selectors.portfolio_snapshot_frame(portfolio=portfolio, fields=tables.RISK_COLUMNS)
    columns = [snaps[c].tolist() for c in tables.RISK_COLUMNS[1:]]
    return tables.risk_table(list(zip(_dates(snaps.index), *columns, strict=True)))


def violations_frame(portfolio: Portfolio) -> pd.DataFrame:
    """Limit breaches in date order (``tables.violations_table``). 1 query. The selector's
    fields come in the table's column order (``tables.VIOLATION_COLUMNS``)."""
    rows = [tuple(v.values()) for v in violation_records(portfolio=portfolio)]
    return tables.violations_table(rows)


TABLES: dict[str, Callable[[Portfolio], pd.DataFrame]] = {
    "equity": equity_frame,
    "trades": trades_frame,
    "positions": positions_frame,
    "risk": risk_frame,
    "violations": violations_frame,
}


def export_frames(portfolio: Portfolio, table: str) -> dict[str, pd.DataFrame]:
    """{table name: frame} for one table, or for every table in ``TABLES`` order when
    ``table`` is "all"."""
    names = list(TABLES) if table == ALL else [table]
    return {name: TABLES[name](portfolio) for name in names}


def table_pieces(
    portfolio: Portfolio, table: str, rows: int | None = None
) -> Iterator[pd.DataFrame]:
    """One table in pieces of at most ``rows`` rows (``PROGRESS_EVERY`` unless given),
    for ``csv_stream``: the trades (the
    table that grows without bound) read piece by piece, any other table read whole
    (one row per snapshot date at most) and cut."""
    rows = rows or PROGRESS_EVERY
    if table == "trades":
        return trades_frames(portfolio, rows=rows)
    return _pieces(TABLES[table](portfolio), rows)


def _pieces(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, max(len(frame), 1), rows):
        yield frame.iloc[start : start + rows]


def export_filename(*, portfolio: Portfolio, table: str, fmt: str) -> str:
    """``quantsite-<table>-<as-of>.<fmt>``, as-of the portfolio's last applied bar date
    (today when it has none yet)."""
    as_of = portfolio.last_applied_date or timezone.localdate()
    return f"quantsite-{table}-{as_of.isoformat()}.{fmt}"


# --- writing ------------------------------------------------------------------------------

# Text starting with one of these is run as a formula by spreadsheet programs that open a
# CSV (OWASP "CSV injection"); such text is written with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _missing(value) -> bool:
    """None, NaN, NaT or pd.NA: a value the writers leave as an empty cell. (``NaT`` is a
    ``datetime`` whose ``isoformat()`` is the text "NaT": it must be caught before the
    date branch.)"""
    if value is None or value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, float) and value != value


def _csv_cell(value):
    if _missing(value):
        return ""
    if isinstance(value, date):  # datetime too: 2022-01-03T21:30:00
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_write(
    pieces: Iterable[pd.DataFrame], out: IO[bytes], progress: Progress | None = None
) -> int:
    """One table, given in pieces (``table_pieces``, ``_pieces``), as UTF-8 CSV
    (``csv_stream``) written to ``out``; returns the number of data rows. ``progress``
    gets the rows written so far after each piece."""
    done = 0
    for piece, chunk in csv_stream(pieces):
        out.write(chunk)
        done += len(piece)
        if progress is not None:
            progress(done)
    return done


def csv_stream(pieces: Iterable[pd.DataFrame]) -> Iterator[tuple[pd.DataFrame, bytes]]:
    """(piece, its CSV bytes) for each piece of one table: a header row (with the first
    piece), then one line per row. Empty cells for NaN/NaT/None; dates ISO (YYYY-MM-DD);
    timestamps ISO 8601; floats in their shortest round-trip form (``repr``); text that a
    spreadsheet would run as a formula starts with an apostrophe. Only one piece is held
    at a time: memory is bounded by a piece, whatever the table's length."""
    header = True
    for piece in pieces:
        text = piece.copy()
        for col in text.columns:
            if text[col].dtype == object or pd.api.types.is_datetime64_any_dtype(text[col]):
                text[col] = [_csv_cell(v) for v in text[col]]
        # headers carry strategy names and tickers (``<name>_equity``): neutralised too
        text.columns = [_csv_cell(str(c)) for c in text.columns]
        buffer = io.StringIO()
        text.to_csv(
            buffer,
            index=False,
            header=header,
            na_rep="",
            lineterminator="\r\n",
            quoting=csv.QUOTE_MINIMAL,
        )
        header = False
        yield piece, buffer.getvalue().encode("utf-8")


def csv_chunks(pieces: Iterable[pd.DataFrame]) -> Iterator[bytes]:
    """``csv_stream``'s bytes alone, for a streamed response."""
    for _, chunk in csv_stream(pieces):
        yield chunk


def _column_width(series: pd.Series, header: str) -> float:
    """Characters wide enough for the header and the longest value (capped at 60)."""
    if pd.api.types.is_float_dtype(series) or pd.api.types.is_integer_dtype(series):
        longest = 14
    else:
        sample = [v for v in series if v is not None]
        if sample and all(isinstance(v, datetime) for v in sample):
            longest = 19
        elif sample and all(isinstance(v, date) for v in sample):
            longest = 10
        else:
            longest = max((len(str(v)) for v in sample), default=0)
    return min(max(len(header), longest) + 2, 60)


def _excel_values(series: pd.Series) -> list:
    """Cell values: floats as floats, dates as dates, timestamps as naive datetimes; NaN,
    NaT and None as empty cells."""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=np.float64)
        return [None if v != v else v for v in values.tolist()]
    if pd.api.types.is_datetime64_any_dtype(series):
        return [None if _missing(v) else v.to_pydatetime() for v in series]
    return [None if _missing(v) else v for v in series.tolist()]


def xlsx_write(
    tables: dict[str, Iterable[pd.DataFrame]],
    out: IO[bytes] | str,
    progress: Progress | None = None,
) -> int:
    """Tables, each given in pieces (``table_pieces``; a whole frame is one piece), as one
    .xlsx workbook, one sheet per table (named after it): a bold, frozen header row,
    numbers as numbers, dates as Excel dates (yyyy-mm-dd), timestamps as Excel datetimes
    (UTC), empty cells for NaN/NaT/None, column widths set from the first piece. Text is
    always text, never a formula. Returns the number of data rows. openpyxl's write-only
    mode streams rows to a temporary file and only one piece is held at a time (memory
    stays flat), but at some 20-80k cells a second: 100,000 trades take seconds, which
    is why large downloads run as ``reporting.export_jobs``."""
    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    done = 0
    for name, pieces in tables.items():
        ws = wb.create_sheet(title=_sheet_title(name))
        ws.freeze_panes = "A2"
        for k, piece in enumerate(pieces):
            if k == 0:
                _xlsx_header(ws, piece, bold)
            columns = [_excel_values(piece[col]) for col in piece.columns]
            for row in zip(*columns, strict=True):
                ws.append([_text_cell(ws, v) for v in row])
                done += 1
                if progress is not None and done % PROGRESS_EVERY == 0:
                    progress(done)
        if progress is not None:
            progress(done)
    wb.save(out)
    return done


def _xlsx_header(ws, frame: pd.DataFrame, bold: Font) -> None:
    for i, col in enumerate(frame.columns, start=1):
        width = _column_width(frame[col], str(col))
        ws.column_dimensions[get_column_letter(i)].width = width
    header = []
    for col in frame.columns:
        cell = WriteOnlyCell(ws, value=str(col))
        cell.data_type = "s"  # a header is text, never a formula (it may carry a name)
        cell.font = bold
        header.append(cell)
    ws.append(header)


def _sheet_title(name: str) -> str:
    """A valid sheet title: Excel refuses ``[]:*?/\\``, a leading or trailing apostrophe
    and more than 31 characters."""
    title = "".join("_" if ch in "[]:*?/\\" else ch for ch in str(name)).strip("'")
    return title[:31] or "sheet"


def _text_cell(ws, value):
    """``value``, or a cell typed as text when it is a string openpyxl would take for a
    formula (a leading "=")."""
    if isinstance(value, str) and value.startswith("="):
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"
        return cell
    return value


def export_write(
    frames: dict[str, pd.DataFrame], fmt: str, out: IO[bytes], progress: Progress | None = None
) -> None:
    """The file for ``frames`` in ``fmt`` written to ``out``: a CSV holds exactly one
    table, a workbook any."""
    if fmt == "csv":
        if len(frames) != 1:
            raise ValueError("a CSV file holds one table")
        csv_write(_pieces(next(iter(frames.values())), PROGRESS_EVERY), out, progress)
    elif fmt == "xlsx":
        xlsx_write({name: [frame] for name, frame in frames.items()}, out, progress)
    else:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")


def export_bytes(frames: dict[str, pd.DataFrame], fmt: str) -> bytes:
    """``export_write`` into memory: the bytes of the file."""
    buffer = io.BytesIO()
    export_write(frames, fmt, buffer)
    return buffer.getvalue()
