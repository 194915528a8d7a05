"""Price validation rules (engine/bars.py): each rule's action, row and message, strict mode,
gaps and wide-to-long conversion. Plain pytest, no database."""

from __future__ import annotations

import datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portfolio.engine.bars import BAR_COLUMNS, validate_bars, wide_to_long
from portfolio.engine.errors import DataValidationError

D = datetime.date
SRC = "prices.csv"


def raw(rows: list[tuple], columns: tuple[str, ...] = ("date", "ticker", "close")):
    """Literal rows -> raw long frame; absent price columns are NaN; row = 1..n."""
    frame = pd.DataFrame(rows, columns=list(columns))
    for col in BAR_COLUMNS:
        if col not in frame:
            frame[col] = np.nan
    frame["row"] = np.arange(1, len(frame) + 1)
    return frame


def business_days(start: str, n: int) -> list[str]:
    return [d.date().isoformat() for d in pd.bdate_range(start, periods=n)]


def only_issue(result):
    assert len(result.issues) == 1, [i.message() for i in result.issues]
    return result.issues[0]


def test_a_clean_frame_comes_back_sorted_unique_with_float_prices_and_no_issues():
    result = validate_bars(
        raw([("2020-01-02", "BBB", 5), ("2020-01-02", "AAA", 10), ("2020-01-03", "AAA", 11)]),
        source=SRC,
    )
    assert result.issues == ()
    bars = result.bars
    assert list(bars.columns) == [*BAR_COLUMNS, "repaired"]
    assert list(zip(bars["ticker"], bars["date"], strict=True)) == [
        ("AAA", D(2020, 1, 2)),
        ("AAA", D(2020, 1, 3)),
        ("BBB", D(2020, 1, 2)),
    ]
    assert bars["close"].dtype == np.float64 and not bars["repaired"].any()
    np.testing.assert_allclose(bars["close"], [10.0, 11.0, 5.0])


def test_an_unparseable_date_is_rejected_as_bad_date():
    result = validate_bars(raw([("2020-01-02", "AAA", 10), ("02/01/2020", "AAA", 11)]), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field, issue.date) == (
        "bad_date",
        "rejected",
        2,
        "date",
        None,
    )
    assert issue.message() == (
        "prices.csv row 2 (AAA) field date: '02/01/2020' is not a YYYY-MM-DD date "
        "(rule bad_date); bar rejected"
    )
    assert len(result.bars) == 1


def test_a_missing_close_is_rejected_naming_file_row_and_field():
    result = validate_bars(
        raw([("2020-01-02", "AAA", 10), ("2020-01-03", "AAA", None)]), source=SRC
    )
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.ticker, issue.date) == (
        "close_missing",
        "rejected",
        2,
        "AAA",
        D(2020, 1, 3),
    )
    assert issue.message() == (
        "prices.csv row 2 (AAA 2020-01-03) field close: close is empty "
        "(rule close_missing); bar rejected"
    )
    assert list(result.bars["date"]) == [D(2020, 1, 2)]


@pytest.mark.parametrize(("close", "shown"), [(-1.5, "-1.5"), (0.0, "0")])
def test_a_zero_or_negative_close_is_rejected_as_close_not_positive(close, shown):
    result = validate_bars(
        raw([("2020-01-02", "AAA", 10), ("2020-01-03", "AAA", close)]), source=SRC
    )
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field) == (
        "close_not_positive",
        "rejected",
        2,
        "close",
    )
    assert issue.message() == (
        f"prices.csv row 2 (AAA 2020-01-03) field close: {shown} is not positive "
        "(rule close_not_positive); bar rejected"
    )


@pytest.mark.parametrize("field", ["open", "high", "low"])
def test_a_non_positive_open_high_or_low_is_rejected(field):
    values = {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5}
    values[field] = -2.0 if field != "low" else 0.0
    cols = ("date", "ticker", "open", "high", "low", "close")
    result = validate_bars(raw([("2020-01-02", "AAA", *values.values())], cols), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field) == (
        f"{field}_not_positive",
        "rejected",
        1,
        field,
    )
    assert f"prices.csv row 1 (AAA 2020-01-02) field {field}:" in issue.message()
    assert result.bars.empty


def test_missing_open_high_low_are_allowed_because_close_only_data_is_normal():
    result = validate_bars(raw([("2020-01-02", "AAA", 10)]), source=SRC)
    assert result.issues == () and np.isnan(result.bars["open"].iloc[0])


def test_a_high_below_the_low_is_rejected():
    cols = ("date", "ticker", "high", "low", "close")
    result = validate_bars(raw([("2020-01-02", "AAA", 9.0, 11.0, 10.0)], cols), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field) == (
        "high_below_low",
        "rejected",
        1,
        "high",
    )
    assert issue.message() == (
        "prices.csv row 1 (AAA 2020-01-02) field high: high 9 is below low 11 "
        "(rule high_below_low); bar rejected"
    )


def test_a_negative_volume_is_rejected():
    cols = ("date", "ticker", "close", "volume")
    result = validate_bars(raw([("2020-01-02", "AAA", 10.0, -100)], cols), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field) == (
        "volume_negative",
        "rejected",
        1,
        "volume",
    )


def test_an_empty_ticker_is_rejected():
    issue = only_issue(validate_bars(raw([("2020-01-02", None, 10.0)]), source=SRC))
    assert (issue.rule, issue.action, issue.row, issue.field) == (
        "ticker_missing",
        "rejected",
        1,
        "ticker",
    )


def test_identical_duplicates_keep_one_copy_and_record_a_repair():
    rows = [("2020-01-02", "AAA", 10), ("2020-01-03", "AAA", 11), ("2020-01-03", "AAA", 11)]
    result = validate_bars(raw(rows), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.field, issue.date) == (
        "duplicate_identical",
        "repaired",
        3,
        "date",
        D(2020, 1, 3),
    )
    assert issue.message().startswith("prices.csv row 3 (AAA 2020-01-03) field date: ")
    assert "row 2" in issue.detail
    np.testing.assert_allclose(result.bars["close"], [10.0, 11.0])


def test_conflicting_duplicates_reject_every_copy():
    rows = [("2020-01-02", "AAA", 10), ("2020-01-03", "AAA", 11), ("2020-01-03", "AAA", 12)]
    result = validate_bars(raw(rows), source=SRC)
    assert [(i.rule, i.action, i.row, i.field) for i in result.issues] == [
        ("duplicate_conflict", "rejected", 2, "close"),
        ("duplicate_conflict", "rejected", 3, "close"),
    ]
    assert result.issues[0].message() == (
        "prices.csv row 2 (AAA 2020-01-03) field close: rows 2, 3 give different closes "
        "(close 11, 12); cannot tell which (rule duplicate_conflict); bar rejected"
    )
    assert list(result.bars["date"]) == [D(2020, 1, 2)]


def test_duplicates_with_the_same_close_but_another_differing_value_also_conflict():
    cols = ("date", "ticker", "close", "volume")
    rows = [("2020-01-02", "AAA", 10, 100), ("2020-01-02", "AAA", 10, 200)]
    result = validate_bars(raw(rows, cols), source=SRC)
    assert [i.rule for i in result.issues] == ["duplicate_conflict"] * 2
    assert result.bars.empty


def test_unsorted_dates_are_sorted_with_one_issue_per_ticker():
    rows = [
        ("2020-01-06", "AAA", 12),
        ("2020-01-02", "AAA", 10),
        ("2020-01-03", "AAA", 11),
        ("2020-01-02", "BBB", 5),
        ("2020-01-03", "BBB", 6),
        ("2020-01-06", "BBB", 7),
    ]
    result = validate_bars(raw(rows), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.ticker, issue.field) == (
        "unsorted",
        "repaired",
        2,
        "AAA",
        "date",
    )
    assert issue.message() == (
        "prices.csv row 2 (AAA 2020-01-02) field date: AAA dates are not ascending: this row "
        "comes after 2020-01-06 (rule unsorted); bars sorted"
    )
    aaa = result.bars[result.bars["ticker"] == "AAA"]
    np.testing.assert_allclose(aaa["close"], [10.0, 11.0, 12.0])


def test_an_unknown_ticker_is_rejected_once_naming_its_first_row():
    rows = [("2020-01-02", "AAA", 10), ("2020-01-02", "ZZZ", 1), ("2020-01-03", "ZZZ", 2)]
    result = validate_bars(raw(rows), source=SRC, known_tickers={"AAA"})
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.ticker, issue.field) == (
        "unknown_ticker",
        "rejected",
        2,
        "ZZZ",
        "ticker",
    )
    assert issue.message() == (
        "prices.csv row 2 (ZZZ 2020-01-02) field ticker: ticker 'ZZZ' is not a known "
        "instrument (2 rows); a price file adds a ticker only when it is named explicitly "
        "(--add-tickers) (rule unknown_ticker); all its bars rejected"
    )
    assert set(result.bars["ticker"]) == {"AAA"}


def test_a_late_listing_is_not_a_gap():
    days = business_days("2020-01-02", 10)
    rows = [(d, "AAA", 10 + i) for i, d in enumerate(days)]
    rows += [(d, "NEW", 50 + i) for i, d in enumerate(days[6:])]
    result = validate_bars(raw(rows), source=SRC)
    assert result.issues == ()
    assert (result.bars["ticker"] == "NEW").sum() == 4


def test_a_two_bar_gap_is_filled_with_the_previous_close_and_flagged_repaired():
    days = business_days("2020-01-02", 6)  # Jan 2, 3, 6, 7, 8, 9
    rows = [(d, "AAA", 100 + i) for i, d in enumerate(days)]
    rows += [(days[0], "BBB", 10), (days[1], "BBB", 11), (days[4], "BBB", 14), (days[5], "BBB", 15)]
    result = validate_bars(raw(rows), source=SRC)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.ticker, issue.date, issue.field) == (
        "gap_filled",
        "repaired",
        None,
        "BBB",
        D(2020, 1, 6),
        "date",
    )
    assert issue.message() == (
        "prices.csv (BBB 2020-01-06) field date: 2 missing bars 2020-01-06..2020-01-07 "
        "(between rows 8 and 9) filled with the previous close 11 (rule gap_filled); gap filled"
    )
    bbb = result.bars[result.bars["ticker"] == "BBB"].reset_index(drop=True)
    # Jan 6 and 7 carry Jan 3's close 11 as open/high/low/close, volume 0, repaired
    np.testing.assert_allclose(bbb["close"], [10, 11, 11, 11, 14, 15])
    np.testing.assert_allclose(bbb.loc[2:3, ["open", "high", "low"]], 11.0)
    np.testing.assert_allclose(bbb.loc[2:3, "volume"], 0.0)
    assert list(bbb["repaired"]) == [False, False, True, True, False, False]
    assert list(bbb["date"]) == [D(2020, 1, d) for d in (2, 3, 6, 7, 8, 9)]


def test_a_seven_bar_gap_is_not_filled():
    days = business_days("2020-01-02", 10)
    rows = [(d, "AAA", 100 + i) for i, d in enumerate(days)]
    rows += [(days[0], "BBB", 10), (days[8], "BBB", 18), (days[9], "BBB", 19)]
    result = validate_bars(raw(rows), source=SRC, max_gap_bars=5)
    issue = only_issue(result)
    assert (issue.rule, issue.action, issue.row, issue.ticker, issue.date) == (
        "gap_too_long",
        "rejected",
        None,
        "BBB",
        D(2020, 1, 3),
    )
    assert "7 missing bars 2020-01-03..2020-01-13" in issue.message()
    assert "between rows 11 and 12" in issue.message() and "field date" in issue.message()
    assert (result.bars["ticker"] == "BBB").sum() == 3 and not result.bars["repaired"].any()


def test_a_rejected_bar_inside_a_history_leaves_a_gap_that_is_filled_and_both_are_recorded():
    rows = [
        ("2020-01-02", "AAA", 10),
        ("2020-01-03", "AAA", -1),
        ("2020-01-06", "AAA", 12),
        ("2020-01-02", "BBB", 5),
        ("2020-01-03", "BBB", 6),
        ("2020-01-06", "BBB", 7),
    ]
    result = validate_bars(raw(rows), source=SRC)
    assert [(i.rule, i.action, i.row) for i in result.issues] == [
        ("close_not_positive", "rejected", 2),
        ("gap_filled", "repaired", None),
    ]
    np.testing.assert_allclose(result.bars["close"][:3], [10, 10, 12])


@pytest.mark.parametrize(
    ("bad_row", "rule"),
    [
        (("2020-01-03", "AAA", None), "close_missing"),
        (("2020-01-03", "AAA", -5), "close_not_positive"),
        (("2020-01-02", "AAA", 11), "duplicate_conflict"),
    ],
)
def test_strict_mode_refuses_a_bad_row_naming_file_row_field_and_rule(bad_row, rule):
    rows = [("2020-01-02", "AAA", 10), bad_row, ("2020-01-06", "AAA", 12)]
    with pytest.raises(DataValidationError) as err:
        validate_bars(raw(rows), source=SRC, strict=True)
    first_row = 1 if rule == "duplicate_conflict" else 2
    assert err.value.where == f"prices.csv row {first_row}"
    assert err.value.rule.startswith("field close: ") and f"(rule {rule})" in err.value.rule
    assert str(err.value).startswith(f"prices.csv row {first_row}: field close")


def test_strict_mode_counts_and_lists_the_other_problems():
    rows = [
        ("2020-01-02", "AAA", 10),
        ("2020-01-03", "AAA", None),
        ("2020-01-06", "AAA", -1),
        ("x", "AAA", 3),
        ("2020-01-08", "AAA", 0),
    ]
    with pytest.raises(DataValidationError) as err:
        validate_bars(raw(rows), source=SRC, strict=True)
    assert err.value.where == "prices.csv row 2"
    assert err.value.rule == (
        "field close: close is empty (rule close_missing); and 3 more problems: "
        "row 3 close close_not_positive; row 4 date bad_date; row 5 close close_not_positive"
    )


def test_strict_mode_lets_repairs_through():
    days = business_days("2020-01-02", 4)
    rows = [(d, "AAA", 10 + i) for i, d in enumerate(days)]
    rows += [(days[3], "BBB", 4), (days[0], "BBB", 1), (days[0], "BBB", 1)]
    result = validate_bars(raw(rows), source=SRC, strict=True)
    assert sorted(i.rule for i in result.issues) == [
        "duplicate_identical",
        "gap_filled",
        "unsorted",
    ]
    assert all(i.action == "repaired" for i in result.issues)


def test_wide_to_long_drops_leading_and_trailing_empties_but_keeps_interior_ones():
    wide = pd.DataFrame(
        {
            "Date": ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"],
            "AAA": ["1", "", "3", ""],  # trailing empty: delisted
            "NEW": [None, None, "7", "8"],  # leading empties: late listing
            "ODD": ["1", "", "", "4"],  # interior empties: missing closes
        }
    )
    long = wide_to_long(wide, date_column="Date")
    assert list(long["ticker"]) == ["AAA"] * 3 + ["NEW"] * 2 + ["ODD"] * 4
    assert list(long["row"]) == [1, 2, 3, 3, 4, 1, 2, 3, 4]
    np.testing.assert_allclose(long["close"], [1, np.nan, 3, 7, 8, 1, np.nan, np.nan, 4])
    result = validate_bars(long, source=SRC)
    assert [(i.rule, i.ticker, i.row) for i in result.issues[:3]] == [
        ("close_missing", "AAA", 2),
        ("close_missing", "ODD", 2),
        ("close_missing", "ODD", 3),
    ]


def test_wide_to_long_treats_a_non_number_as_a_value_so_a_typo_is_not_a_late_listing():
    wide = pd.DataFrame({"date": ["2020-01-02", "2020-01-03"], "AAA": ["abc", "2"]})
    long = wide_to_long(wide)
    assert list(long["row"]) == [1, 2] and np.isnan(long["close"].iloc[0])
    issue = only_issue(validate_bars(long, source=SRC))
    assert issue.message() == (
        "prices.csv row 1 (AAA 2020-01-02) field close: close 'abc' is not a number "
        "(rule close_missing); bar rejected"
    )


closes = st.sampled_from([np.nan, -1.0, 0.0, 1.5, 2.0, 3.0])
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(
            ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07", "2020-01-08", "bad"]
        ),
        st.sampled_from(["AAA", "BBB"]),
        closes,
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(rows_strategy)
def test_every_input_row_is_either_kept_or_named_by_an_issue(rows):
    result = validate_bars(raw(rows), source=SRC, max_gap_bars=1)
    bars = result.bars
    per_row = [i for i in result.issues if i.row is not None and i.rule != "unsorted"]
    assert (~bars["repaired"]).sum() == len(rows) - len(per_row)
    assert not bars.duplicated(["ticker", "date"]).any()
    assert (bars["close"] > 0).all()
    assert bars.equals(bars.sort_values(["ticker", "date"], kind="stable"))
    filled = sum(int(i.detail.split()[0]) for i in result.issues if i.rule == "gap_filled")
    assert bars["repaired"].sum() == filled
