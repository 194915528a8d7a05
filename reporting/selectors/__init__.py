"""Read-side queries for the dashboard pages (HackSoft-style selectors: keyword-only, typed,
``<entity>_<verb>``).

Each selector is a fixed number of queries whatever the portfolio's size: histories are
read with one ``values_list`` into pandas (Decimal money becomes float64 here, at the
boundary), lists are sliced in SQL. Dates in frames are a ``DatetimeIndex`` or datetime64
column.

The one read path of the pages, exports, API and static report, split by what is read:
``portfolios`` (portfolio and strategy lookups, state stamps, row counts), ``history``
(snapshot frames, return series, equity curves), ``trades`` (fills, their pages,
rebalances, orders), ``positions``, ``risk`` (violations, limits, alert channels, the
risk manager's measurements), ``activity`` (the recent-activity feed, audit trail,
notes) and ``prices`` (closes, the benchmark, instruments, reference stamps);
``common`` holds the frame reader they share; the whole close history as floats is the
update path's ``portfolio.selectors.price_frame_benchmarks``, re-exported. Callers import this
package (``from reporting import selectors``): every public name is re-exported here.
"""

from portfolio.selectors import price_frame_benchmarks
from reporting.selectors.activity import (
    activity_rebalance_list,
    activity_status_change_list,
    activity_trade_groups,
    activity_violation_list,
    bar_activity_counts,
    config_change_list,
    note_map,
    status_change_list,
)
from reporting.selectors.history import (
    PORTFOLIO_SNAPSHOT_FIELDS,
    STRATEGY_SNAPSHOT_FIELDS,
    curve_decimated,
    portfolio_curve_list,
    portfolio_history_frame,
    portfolio_return_series,
    portfolio_snapshot_frame,
    strategy_curve_list,
    strategy_history_frame,
    strategy_return_frame,
    strategy_snapshot_frame,
    strategy_wide_frame,
)
from reporting.selectors.portfolios import (
    live_portfolio_id_subquery,
    portfolio_choices,
    portfolio_get,
    portfolio_live_get,
    portfolio_row_counts,
    portfolio_shown_get,
    state_stamp_get,
    strategy_list,
)
from reporting.selectors.positions import (
    position_frame,
)
from reporting.selectors.prices import (
    BENCHMARK_TICKER,
    benchmark_close_list,
    benchmark_close_series,
    close_matrix,
    instrument_frame,
    price_bar_stamp,
    price_series_from,
    reference_stamp_get,
)
from reporting.selectors.risk import (
    REVIEW_CANDIDATES_READ,
    alert_channel_list,
    drawdown_reference,
    review_candidate_list,
    risk_limit_list,
    risk_measurement_get,
    risk_window_frame,
    violation_count,
    violation_list,
)
from reporting.selectors.trades import (
    BRIEF_TRADE_FIELDS,
    TRADE_FIELDS,
    order_list,
    rebalance_event_frame,
    rebalance_event_list,
    rebalance_request_list,
    rebalance_request_pending_count,
    signal_trade_sizing_map,
    trade_frame,
    trade_frame_pages,
    trade_page_list,
    trade_recent_list,
)

__all__ = [
    "portfolio_live_get",
    "portfolio_get",
    "portfolio_shown_get",
    "portfolio_choices",
    "strategy_list",
    "live_portfolio_id_subquery",
    "state_stamp_get",
    "portfolio_row_counts",
    "PORTFOLIO_SNAPSHOT_FIELDS",
    "STRATEGY_SNAPSHOT_FIELDS",
    "portfolio_snapshot_frame",
    "strategy_snapshot_frame",
    "strategy_wide_frame",
    "portfolio_return_series",
    "strategy_return_frame",
    "portfolio_curve_list",
    "strategy_curve_list",
    "curve_decimated",
    "portfolio_history_frame",
    "strategy_history_frame",
    "TRADE_FIELDS",
    "BRIEF_TRADE_FIELDS",
    "trade_frame",
    "trade_frame_pages",
    "trade_recent_list",
    "trade_page_list",
    "rebalance_event_frame",
    "rebalance_event_list",
    "rebalance_request_list",
    "rebalance_request_pending_count",
    "order_list",
    "signal_trade_sizing_map",
    "position_frame",
    "violation_list",
    "violation_count",
    "REVIEW_CANDIDATES_READ",
    "review_candidate_list",
    "risk_limit_list",
    "alert_channel_list",
    "drawdown_reference",
    "risk_measurement_get",
    "risk_window_frame",
    "status_change_list",
    "activity_trade_groups",
    "activity_rebalance_list",
    "activity_violation_list",
    "activity_status_change_list",
    "config_change_list",
    "note_map",
    "bar_activity_counts",
    "BENCHMARK_TICKER",
    "benchmark_close_series",
    "benchmark_close_list",
    "instrument_frame",
    "close_matrix",
    "price_series_from",
    "reference_stamp_get",
    "price_bar_stamp",
    "price_frame_benchmarks",
]
