"""Validation of daily price bars: every bad bar is rejected or repaired, and recorded.

Input (``raw``): a long frame with ``BAR_COLUMNS`` plus ``row`` (int, the 1-based data row
in the source, header excluded). ``date`` may be ISO-8601 text, ``datetime.date`` or
datetime64; ``open``/``high``/``low``/``volume`` may be missing or NaN (close-only data).
An optional text column ``note`` explains why a row's close was blanked by the reader (a
cell that was not a number) and is used as the issue's detail.

Output (``ValidatedBars.bars``): a long frame with ``BAR_COLUMNS`` plus a bool ``repaired``;
``date`` as ``datetime.date``; prices float64 in the source's currency units, volume
float64 (NaN when absent); sorted by (ticker, date), unique per (ticker, date), close > 0.

Rules, applied in this order. Each produces one ``BarIssue`` as stated; a bar is never
dropped or changed without one. A row that breaks several row rules is reported once,
under the first of them.

=====================  ========  ========  ===============================================
rule                   field     action    what happens
=====================  ========  ========  ===============================================
unknown_ticker         ticker    rejected  ticker not in ``known_tickers`` (when given):
                                           all its rows dropped; one issue per ticker,
                                           naming its first row
ticker_missing         ticker    rejected  empty ticker
bad_date               date      rejected  date not an ISO-8601 date (YYYY-MM-DD)
close_missing          close     rejected  close empty, not a number, or not finite
close_not_positive     close     rejected  close <= 0
open_not_positive      open      rejected  open present and <= 0 (same for high, low)
close_out_of_range     close     rejected  close outside ``Plausibility.min_price`` ..
                                           ``max_price`` (same for open, high, low)
high_below_low         high      rejected  high < low, both present
volume_negative        volume    rejected  volume present and < 0
volume_out_of_range    volume    rejected  volume above ``Plausibility.max_volume``
duplicate_identical    date      repaired  same (ticker, date) with identical values: the
                                           first copy is kept, one issue per dropped copy
duplicate_conflict     close     rejected  same (ticker, date) with any differing value:
                                           all copies dropped (we cannot know which is
                                           right), one issue per copy
unsorted               date      repaired  a ticker's dates are not ascending in source
                                           order: sorted; one issue per ticker, naming the
                                           first row out of order
close_jump             close     rejected  close more than ``Plausibility.max_jump`` times
                                           (or less than 1/max_jump times) the ticker's
                                           previous accepted close: held back, and the next
                                           bar is compared with the last accepted one
gap_filled             date      repaired  a run of up to ``max_gap_bars`` dates that other
                                           tickers have, between a ticker's first and last
                                           bar, is filled with the previous close (open,
                                           high, low = that close, volume 0, repaired=True);
                                           one issue per run
gap_too_long           date      rejected  a longer run: the filler is refused and those
                                           dates have no bar for the ticker; one issue
                                           per run
=====================  ========  ========  ===============================================

Dates before a ticker's first bar (late listing) or after its last (delisting) are not
gaps. The calendar for gaps is the union of the dates of bars that survived the row rules;
duplicates are likewise judged among those bars (a copy with no close is rejected by
close_missing and the valid copy kept).

``strict=True`` raises ``DataValidationError`` when any issue is "rejected" (repairs do not
raise), naming the source and first offending row, the field and the rule, and counting
the other problems.
"""

from __future__ import annotations

import datetime
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from portfolio.engine.errors import DataValidationError

BAR_COLUMNS = ("date", "ticker", "open", "high", "low", "close", "volume")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
REJECTED = "rejected"
REPAIRED = "repaired"

# What the message says happened, for rules that are not about a single bar.
_OUTCOME = {
    "unknown_ticker": "all its bars rejected",
    "duplicate_identical": "copy dropped",
    "unsorted": "bars sorted",
    "gap_filled": "gap filled",
    "gap_too_long": "gap not filled",
}


@dataclass(frozen=True)
class BarIssue:
    """One rejected or repaired bar (or run of bars) and the rule that decided it."""

    source: str
    row: int | None
    ticker: str
    date: datetime.date | None
    field: str
    rule: str
    action: str
    detail: str

    def message(self) -> str:
        """E.g. ``prices.csv row 14 (AAPL 2020-03-02) field close: -1.5 is not positive
        (rule close_not_positive); bar rejected``."""
        where = self.source if self.row is None else f"{self.source} row {self.row}"
        ident = " ".join(x for x in (self.ticker, self.date and self.date.isoformat()) if x)
        outcome = _OUTCOME.get(self.rule, f"bar {self.action}")
        head = f"{where} ({ident})" if ident else where
        return f"{head} field {self.field}: {self.detail} (rule {self.rule}); {outcome}"

    def short(self) -> str:
        where = f"row {self.row}" if self.row is not None else f"{self.ticker} {self.date}"
        return f"{where} {self.field} {self.rule}"


@dataclass(frozen=True)
class Plausibility:
    """Bounds outside which a price is taken for a data error rather than a market move.
    The defaults hold every bar of the bundled data (its largest daily move is a factor 3)
    and still catch the usual accidents: a price in cents instead of dollars is a 100x
    jump, 1e308 is out of range."""

    min_price: float = 1e-6
    max_price: float = 1e9
    max_jump: float = 10.0
    max_volume: float = 1e15


@dataclass(frozen=True)
class ValidatedBars:
    bars: pd.DataFrame
    issues: tuple[BarIssue, ...]


def parse_dates(values: pd.Series) -> pd.Series:
    """ISO-8601 text, dates or datetimes -> datetime64[ns] at midnight; NaT if unparseable.
    Only ISO dates are accepted: "01/02/2020" is ambiguous (US or UK) and becomes NaT."""
    s = pd.Series(values)
    if not pd.api.types.is_datetime64_any_dtype(s):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = pd.to_datetime(s, errors="coerce", format="ISO8601")
            if not pd.api.types.is_datetime64_any_dtype(out):  # mixed UTC offsets
                out = pd.to_datetime(s, errors="coerce", format="ISO8601", utc=True)
        s = out
    if s.dt.tz is not None:
        s = s.dt.tz_localize(None)
    return s.dt.normalize().astype("datetime64[ns]")


def validate_bars(
    raw: pd.DataFrame,
    *,
    source: str,
    known_tickers: set[str] | None = None,
    max_gap_bars: int = 5,
    strict: bool = False,
    plausibility: Plausibility | None = None,
) -> ValidatedBars:
    """Apply the rules in the module docstring; see there for shapes and units."""
    plausibility = plausibility or Plausibility()
    frame = _normalise(raw, source)
    issues: list[BarIssue] = []
    frame = _drop_unknown_tickers(frame, known_tickers, source, issues)
    frame = _drop_bad_rows(frame, plausibility, source, issues)
    frame = _resolve_duplicates(frame, source, issues)
    frame = _sort(frame, source, issues)
    frame = _drop_jumps(frame, plausibility.max_jump, source, issues)
    frame = _fill_gaps(frame, max_gap_bars, source, issues)
    issues.sort(key=_issue_order)
    if strict:
        _raise_if_rejected(issues)
    bars = frame[list(BAR_COLUMNS) + ["repaired"]].reset_index(drop=True)
    bars["date"] = bars["date"].to_numpy().astype("datetime64[D]").astype(object)
    return ValidatedBars(bars=bars, issues=tuple(issues))


def wide_to_long(frame: pd.DataFrame, *, date_column: str = "date") -> pd.DataFrame:
    """Wide (one date column + one close column per ticker) -> long ``BAR_COLUMNS`` + row.

    ``row`` is the 1-based position of the date's line. Empty cells inside a ticker's life
    become NaN closes (so validation reports them); empty cells before its first value or
    after its last are absent (late listing, delisting). A cell that is present but not a
    number counts as a value (it becomes a NaN close with a ``note``), so a typo is never
    mistaken for a late listing. Output is ticker-major, in source order within a ticker."""
    positions = [i for i, c in enumerate(frame.columns) if c != date_column]
    tickers = np.array([str(frame.columns[i]).strip() for i in positions], dtype=object)
    cells = frame.iloc[:, positions]
    text = cells.astype("string").apply(lambda col: col.str.strip()).fillna("")
    present = (text != "").to_numpy(bool)
    values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    line = np.arange(len(frame))[:, None]
    first = np.where(present, line, len(frame)).min(axis=0, initial=len(frame))
    last = np.where(present, line, -1).max(axis=0, initial=-1)
    col, day = np.nonzero(((line >= first) & (line <= last)).T)
    close = values[day, col]
    note = np.full(len(day), "", dtype=object)
    bad = present[day, col] & np.isnan(close)
    if bad.any():
        raw_text = text.to_numpy(object)[day[bad], col[bad]]
        note[bad] = [f"close {t!r} is not a number" for t in raw_text]
    nan = np.full(len(day), np.nan)
    return pd.DataFrame(
        {
            "date": frame[date_column].to_numpy(object)[day],
            "ticker": tickers[col],
            "open": nan,
            "high": nan,
            "low": nan,
            "close": close,
            "volume": nan,
            "row": day + 1,
            "note": note,
        }
    )


def _normalise(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    missing = [c for c in ("date", "ticker", "close") if c not in raw.columns]
    if missing:
        raise DataValidationError(source, f"missing columns {missing}; need {BAR_COLUMNS}")
    n = len(raw)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["date_text"] = raw["date"].to_numpy()
    out["date"] = parse_dates(raw["date"].reset_index(drop=True)).to_numpy()
    ticker = raw["ticker"].reset_index(drop=True).astype(object)  # may be categorical
    out["ticker"] = ticker.where(ticker.notna(), "").astype(str).str.strip().to_numpy(object)
    for col in VALUE_COLUMNS:
        values = raw[col] if col in raw.columns else pd.Series(np.nan, index=raw.index)
        out[col] = pd.to_numeric(values, errors="coerce").astype(float).to_numpy()
    rows = raw["row"] if "row" in raw.columns else pd.Series(np.arange(1, n + 1))
    out["row"] = np.asarray(rows, dtype=np.int64)
    note = raw["note"] if "note" in raw.columns else pd.Series("", index=raw.index)
    out["note"] = note.fillna("").astype(str).to_numpy(object)
    out["repaired"] = False
    return out


def _issue(source, rec, field, rule, action, detail) -> BarIssue:
    return BarIssue(
        source=source,
        row=int(rec.row),
        ticker=rec.ticker,
        date=None if pd.isna(rec.date) else _day(rec.date),
        field=field,
        rule=rule,
        action=action,
        detail=detail,
    )


def _num(v: float) -> str:
    return f"{v:.10g}"


def _drop_unknown_tickers(frame, known, source, issues) -> pd.DataFrame:
    if known is None:
        return frame
    unknown = ~frame["ticker"].isin(known) & (frame["ticker"] != "")
    if not unknown.any():
        return frame
    bad = frame[unknown].sort_values("row", kind="stable")
    for ticker, group in bad.groupby("ticker", sort=True):
        rec = group.iloc[0]
        detail = (
            f"ticker {ticker[:40]!r} is not a known instrument ({len(group)} rows); "
            "a price file adds a ticker only when it is named explicitly (--add-tickers)"
        )
        issues.append(_issue(source, rec, "ticker", "unknown_ticker", REJECTED, detail))
    return frame[~unknown]


def _row_rules(f: pd.DataFrame, p: Plausibility) -> list[tuple[str, str, pd.Series]]:
    """(rule, field, mask) in priority order; a row is reported under its first rule."""
    close = f["close"]
    rules = [
        ("ticker_missing", "ticker", f["ticker"] == ""),
        ("bad_date", "date", f["date"].isna()),
        ("close_missing", "close", ~np.isfinite(close)),
        ("close_not_positive", "close", close <= 0),
    ]
    rules += [(f"{c}_not_positive", c, f[c] <= 0) for c in ("open", "high", "low")]
    prices = ("close", "open", "high", "low")
    # NaN compares False, so an absent open/high/low is never out of range; +-inf is
    rules += [(f"{c}_out_of_range", c, _outside(f[c], p)) for c in prices]
    rules.append(("high_below_low", "high", f["high"] < f["low"]))
    rules.append(("volume_negative", "volume", f["volume"] < 0))
    rules.append(("volume_out_of_range", "volume", f["volume"] > p.max_volume))
    return rules


def _outside(values: pd.Series, p: Plausibility) -> pd.Series:
    return (values < p.min_price) | (values > p.max_price)


def _row_detail(rule: str, rec, p: Plausibility) -> str:
    if rule == "ticker_missing":
        return "ticker is empty"
    if rule == "bad_date":
        return f"{rec.date_text!r} is not a YYYY-MM-DD date"
    if rule == "close_missing":
        if rec.note:
            return rec.note
        return "close is empty" if np.isnan(rec.close) else f"{rec.close} is not a finite number"
    if rule == "high_below_low":
        return f"high {_num(rec.high)} is below low {_num(rec.low)}"
    field = rule.split("_", 1)[0]
    value = _num(getattr(rec, field))
    if rule == "volume_out_of_range":
        return f"{value} is above the plausible maximum {_num(p.max_volume)}"
    if rule.endswith("_out_of_range"):
        bounds = f"{_num(p.min_price)}..{_num(p.max_price)}"
        return f"{value} is outside the plausible range {bounds}"
    return f"{value} is negative" if rule == "volume_negative" else f"{value} is not positive"


def _drop_bad_rows(frame, p: Plausibility, source, issues) -> pd.DataFrame:
    rules = _row_rules(frame, p)
    which = np.full(len(frame), -1)
    for k, (_, _, mask) in enumerate(rules):
        which[mask.to_numpy(bool) & (which < 0)] = k
    bad = which >= 0
    for rec, k in zip(frame[bad].itertuples(index=False), which[bad], strict=True):
        rule, field, _ = rules[k]
        issues.append(_issue(source, rec, field, rule, REJECTED, _row_detail(rule, rec, p)))
    return frame[~bad]


def _drop_jumps(frame, max_jump: float, source, issues) -> pd.DataFrame:
    """``frame`` sorted by (ticker, date) and unique. A bar is compared with the ticker's
    last accepted close, so a one-bar spike rejects only the spike, not the bar after it.
    Only tickers with a suspicious consecutive ratio take the (sequential) slow path."""
    tickers, closes = frame["ticker"].to_numpy(), frame["close"].to_numpy()
    same = np.zeros(len(frame), dtype=bool)
    same[1:] = tickers[1:] == tickers[:-1]
    ratio = np.ones(len(frame))
    ratio[1:] = closes[1:] / closes[:-1]
    suspect = same & ((ratio > max_jump) | (ratio < 1 / max_jump))
    if not suspect.any():
        return frame
    drop = np.zeros(len(frame), dtype=bool)
    for ticker in np.unique(tickers[suspect]):
        rows = np.nonzero(tickers == ticker)[0]
        accepted = closes[rows[0]]
        for i in rows[1:]:
            r = closes[i] / accepted
            if r > max_jump or r < 1 / max_jump:
                drop[i] = True
                rec = frame.iloc[i]
                detail = (
                    f"{_num(closes[i])} is {_num(r)} times the previous accepted close "
                    f"{_num(accepted)} (at most {_num(max_jump)}x either way)"
                )
                issues.append(_issue(source, rec, "close", "close_jump", REJECTED, detail))
            else:
                accepted = closes[i]
    return frame[~drop]


def _resolve_duplicates(frame, source, issues) -> pd.DataFrame:
    key = ["ticker", "date"]
    dup = frame.duplicated(key, keep=False)
    if not dup.any():
        return frame
    drop = []
    copies = frame[dup].sort_values([*key, "row"], kind="stable")
    for _, group in copies.groupby(key, sort=False):
        rows = ", ".join(str(r) for r in group["row"])
        conflict = len(group[list(VALUE_COLUMNS)].drop_duplicates()) > 1
        if conflict:
            closes = ", ".join(_num(c) for c in group["close"])
            what = "closes" if group["close"].nunique(dropna=False) > 1 else "values"
            detail = f"rows {rows} give different {what} (close {closes}); cannot tell which"
            victims = group
        else:
            detail = f"same date and values as row {group['row'].iloc[0]} (rows {rows})"
            victims = group.iloc[1:]
        for rec in victims.itertuples(index=False):
            issues.append(
                _issue(
                    source,
                    rec,
                    "close" if conflict else "date",
                    "duplicate_conflict" if conflict else "duplicate_identical",
                    REJECTED if conflict else REPAIRED,
                    detail,
                )
            )
        drop.extend(victims.index)
    return frame.drop(index=drop)


def _sort(frame, source, issues) -> pd.DataFrame:
    by_row = frame.sort_values(["ticker", "row"], kind="stable")
    tickers, dates = by_row["ticker"].to_numpy(), by_row["date"].to_numpy()
    back = np.zeros(len(by_row), dtype=bool)
    back[1:] = (tickers[1:] == tickers[:-1]) & (dates[1:] < dates[:-1])
    seen: set[str] = set()
    for i in np.nonzero(back)[0]:
        rec = by_row.iloc[i]
        if rec.ticker in seen:
            continue
        seen.add(rec.ticker)
        detail = f"{rec.ticker} dates are not ascending: this row comes after {_day(dates[i - 1])}"
        issues.append(_issue(source, rec, "date", "unsorted", REPAIRED, detail))
    if not back.any():
        return by_row
    return frame.sort_values(["ticker", "date"], kind="stable")


def _fill_gaps(frame, max_gap_bars, source, issues) -> pd.DataFrame:
    """``frame`` sorted by (ticker, date) and unique. Gaps are measured on the calendar of
    all dates present; see the module docstring."""
    dates = frame["date"].to_numpy()
    calendar = np.unique(dates)
    pos = np.searchsorted(calendar, dates)
    tickers = frame["ticker"].to_numpy()
    after = np.nonzero((tickers[1:] == tickers[:-1]) & (np.diff(pos) > 1))[0] + 1
    if not len(after):
        return frame
    length = pos[after] - pos[after - 1] - 1
    rows, closes = frame["row"].to_numpy(), frame["close"].to_numpy()
    for i, n in zip(after, length, strict=True):
        first, last = calendar[pos[i - 1] + 1], calendar[pos[i] - 1]
        span = f"{n} missing bar{'s' if n > 1 else ''} {_day(first)}..{_day(last)}"
        between = f"between rows {rows[i - 1]} and {rows[i]}"
        if n <= max_gap_bars:
            rule, action = "gap_filled", REPAIRED
            detail = f"{span} ({between}) filled with the previous close {_num(closes[i - 1])}"
        else:
            rule, action = "gap_too_long", REJECTED
            detail = f"{span} ({between}) is longer than max_gap_bars={max_gap_bars}"
        issues.append(BarIssue(source, None, tickers[i], _day(first), "date", rule, action, detail))
    fill = after[length <= max_gap_bars]
    if not len(fill):
        return frame
    return _with_fills(frame, calendar, pos, fill, length[length <= max_gap_bars])


def _with_fills(frame, calendar, pos, after, length) -> pd.DataFrame:
    prev = after - 1
    offsets = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    slots = np.repeat(pos[prev] + 1, length) + offsets
    close = np.repeat(frame["close"].to_numpy()[prev], length)
    filled = pd.DataFrame(
        {
            "date_text": "",
            "date": calendar[slots],
            "ticker": np.repeat(frame["ticker"].to_numpy()[prev], length),
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": np.zeros(len(slots)),
            "row": np.repeat(frame["row"].to_numpy()[prev], length),
            "note": "",
            "repaired": True,
        }
    )
    both = pd.concat([frame, filled], ignore_index=True)
    return both.sort_values(["ticker", "date"], kind="stable")


def _day(value) -> datetime.date:
    return pd.Timestamp(value).date()


def _issue_order(issue: BarIssue):
    return (
        issue.row is None,
        issue.row or 0,
        issue.ticker,
        issue.date or datetime.date.min,
        issue.rule,
    )


def _raise_if_rejected(issues: list[BarIssue]) -> None:
    rejected = [i for i in issues if i.action == REJECTED]
    if not rejected:
        return
    first, others = rejected[0], rejected[1:]
    where = first.source if first.row is None else f"{first.source} row {first.row}"
    if first.row is None:
        where += f" ({first.ticker} {first.date})"
    rule = f"field {first.field}: {first.detail} (rule {first.rule})"
    if others:
        listed = "; ".join(i.short() for i in others[:5])
        more = "; ..." if len(others) > 5 else ""
        plural = "s" if len(others) > 1 else ""
        rule += f"; and {len(others)} more problem{plural}: {listed}{more}"
    raise DataValidationError(where, rule)
