"""Reading a user's price CSV (optionally .gz) into the raw long frame, in bounded memory.

A file is refused before parsing when it is larger than ``max_bytes`` (for a .gz file the
decompressed size is counted as it streams, so a small archive cannot expand without
bound). Long files are parsed in chunks of ``CHUNK_ROWS`` lines and each chunk is turned
into numbers at once, so the text of the whole file is never held: the peak is the
compact result plus one chunk. Wide files need every row before a ticker's first and last
value are known (late listing, delisting), so their text is held, within the size limit.
No Django import here.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from portfolio.engine.bars import BAR_COLUMNS, VALUE_COLUMNS, wide_to_long
from portfolio.engine.errors import DataValidationError

RAW_COLUMNS = (*BAR_COLUMNS, "row", "note")
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
CHUNK_ROWS = 50_000
LONG_REQUIRED = ("date", "ticker", "close")
# Header names that mean "this is a long file", so they are never taken for tickers.
_RESERVED = {
    "ticker",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "adj close",
    "adj_close",
    "volume",
    "price",
}
EXPECTED_HEADERS = (
    "expected a long file with columns date,ticker,close[,open,high,low,volume] "
    "or a wide file with columns date,<TICKER>,<TICKER>,... (closes), case-insensitive"
)


class _TooLarge(Exception):
    pass


class _Limited(io.RawIOBase):
    """A binary stream that raises ``_TooLarge`` once more than ``limit`` bytes are read."""

    def __init__(self, inner, limit: int) -> None:
        self._inner, self._left = inner, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._inner.read(min(len(buffer), self._left + 1))
        self._left -= len(data)
        if self._left < 0:
            raise _TooLarge
        buffer[: len(data)] = data
        return len(data)


def _size_rule(max_bytes: int) -> str:
    return (
        f"file is larger than the limit of {max_bytes:,} bytes "
        "(QUANTSITE_PRICE_FILE_MAX_MB); split it or raise the limit"
    )


def read_price_csv(path: Path, *, source: str, max_bytes: int = DEFAULT_MAX_BYTES) -> pd.DataFrame:
    """Raw long frame from a long or wide CSV; ``row`` = 1-based data row (header excluded,
    blank lines counted). The size and the header are checked before the body is parsed,
    so a wrong file is named as such rather than by a tokenizer error."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DataValidationError(source, "file not found") from None
    except OSError as exc:
        raise DataValidationError(source, f"cannot be read ({exc.strerror})") from None
    if size > max_bytes:
        raise DataValidationError(source, _size_rule(max_bytes))
    first = next(_chunks(path, source, max_bytes, nrows=1), None)
    if first is None:
        raise DataValidationError(source, f"file is empty; {EXPECTED_HEADERS}")
    header = [str(h).strip() for h in first.iloc[0]]
    lower = [h.lower() for h in header]
    layout = _layout(lower)
    if layout is None:
        raise DataValidationError(
            source, f"unrecognised header {','.join(header)}; {EXPECTED_HEADERS}"
        )
    if layout == "long":
        for c in (*LONG_REQUIRED, *VALUE_COLUMNS):
            if lower.count(c) > 1:
                raise DataValidationError(source, f"column {c!r} appears {lower.count(c)} times")
    parts = []
    for chunk in _chunks(path, source, max_bytes):
        data = chunk.fillna("")
        data = data[data.index >= 1]  # index = line; the header is line 0, so = data row
        data = data[(data.apply(lambda c: c.str.strip()) != "").any(axis=1)]  # blank lines
        if len(data):
            parts.append(_long_csv(data, lower) if layout == "long" else data)
    if not parts:
        raise DataValidationError(source, "has a header but no data rows")
    if layout == "long":
        return _concat_long(parts)
    wide = pd.concat(parts)
    wide.columns = header
    raw = wide_to_long(wide, date_column=header[lower.index("date")])
    raw["row"] = wide.index.to_numpy()[raw["row"].to_numpy() - 1]
    return raw[list(RAW_COLUMNS)]


def _layout(lower: list[str]) -> str | None:
    if all(c in lower for c in LONG_REQUIRED):
        return "long"
    others = [h for h in lower if h != "date"]
    if lower.count("date") == 1 and others and all(h and h not in _RESERVED for h in others):
        return "wide"
    return None


def _chunks(path: Path, source: str, max_bytes: int, nrows: int | None = None):
    """Text cells of the file, ``CHUNK_ROWS`` lines at a time; index = 0-based line."""
    try:
        with path.open("rb") as handle:
            inner = gzip.GzipFile(fileobj=handle) if path.suffix == ".gz" else handle
            stream = io.BufferedReader(_Limited(inner, max_bytes))
            reader = pd.read_csv(
                stream,
                header=None,
                dtype=str,
                na_filter=False,
                skip_blank_lines=False,
                nrows=nrows,
                chunksize=CHUNK_ROWS,
                encoding="utf-8",
            )
            with reader:
                yield from reader
    except _TooLarge:
        raise DataValidationError(source, _size_rule(max_bytes)) from None
    except pd.errors.EmptyDataError:
        return
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        reason = " ".join(str(exc).split())
        raise DataValidationError(source, f"not a readable CSV file ({reason})") from None


def _long_csv(data: pd.DataFrame, lower: list[str]) -> pd.DataFrame:
    column = {c: data.iloc[:, lower.index(c)].str.strip() for c in lower if c in BAR_COLUMNS}
    out = pd.DataFrame({"date": column["date"], "ticker": column["ticker"]})
    note = pd.Series("", index=data.index, dtype=object)
    # close first, so a bad close is what the note names when several cells are bad
    for c in ("close", "open", "high", "low", "volume"):
        text = column.get(c, pd.Series("", index=data.index))
        values = pd.to_numeric(text, errors="coerce").astype(float)
        bad = (text != "") & values.isna()
        unexplained = bad & (note == "")
        note[unexplained] = [f"{c} {t!r} is not a number" for t in text[unexplained]]
        out[c] = values
    out.loc[note != "", "close"] = np.nan
    out["row"] = data.index.to_numpy()
    out["note"] = note
    for c in _TEXT_COLUMNS:  # few distinct values: one string each instead of one a row
        out[c] = out[c].astype("category")
    return out[list(RAW_COLUMNS)]


_TEXT_COLUMNS = ("date", "ticker")  # note: one shared "" a row already


def _concat_long(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks as one frame, the text columns kept categorical (a plain ``concat`` of
    categoricals with different categories would turn them back into one string a row)."""
    text = {c: union_categoricals([p[c] for p in parts]) for c in _TEXT_COLUMNS}
    numbers = pd.concat([p.drop(columns=list(_TEXT_COLUMNS)) for p in parts], ignore_index=True)
    for c, values in text.items():
        numbers[c] = values
    return numbers[list(RAW_COLUMNS)]
