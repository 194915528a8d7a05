"""The strategy page's signal overlay and position sizing rationale (issue 14).

Both come from the functions the update path itself runs, never a copy: the signal's
indicators from ``Signal.indicators`` (the very arrays ``Signal.targets`` decides from) and
a position's size from ``portfolio.services.books.spec_sizing_stages`` (the steps of
``spec_targets``) plus the inputs the update path stored with the fill (``Trade.sizing``,
``portfolio.engine.cycle.sizing_detail``). The closes are the update path's: every stored
bar's date as the index, the tradable tickers that have a bar as the columns
(``selectors.price_frame_benchmarks``), through the page's as-of date only, so nothing
after it is seen.
"""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
from django.core.cache import cache

from portfolio.engine.signals import Signal, signal_from_config
from portfolio.engine.sizing import risk_config_from_dict
from portfolio.models import Strategy
from portfolio.services.books import spec_sizing_stages, targets_spec
from reporting import charts, selectors

# Indicators drawn over the price (same units); the others get a panel of their own.
PRICE_LEVEL = ("sma", "fast", "slow")
# A held quantity this close (relative) to weight x equity / close is the fill's own.
QUANTITY_RTOL = 1e-9
CLOSES_CACHE_SECONDS = 600
CLOSES_CACHE_KEY = "strategy-page:closes"


def universe_closes(*, as_of: date | None) -> pd.DataFrame:
    """The update path's close frame through ``as_of`` as ``spec_targets`` takes it
    (``portfolio.selectors.price_frame`` without the benchmarks: the tradable tickers that
    have a bar, in ticker order, on every bar date of any instrument). Cached on the
    bars' stamp (``price_bar_stamp``: 1 query when cached, 3 when not): reading every
    bar is most of the page's time, and bars up to a date change only when one is added
    or removed (or a Decimal rewritten in place by hand, which nothing in the app does).

    One entry per process, stamped, replaced by the next stamp: a key per stamp left one
    frame (1.5 MB for the demo) per bar in the per-process cache until its 300 entries
    were full, and the worker, which builds the strategy pages after every update, grew
    by 270 MiB over 200 one-bar updates (``bench/memory.py``)."""
    stamp = (as_of, *selectors.price_bar_stamp(end=as_of))
    hit = cache.get(CLOSES_CACHE_KEY)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    closes, benchmarks = selectors.price_frame_benchmarks(end=as_of)
    closes = closes.drop(columns=benchmarks)
    cache.set(CLOSES_CACHE_KEY, (stamp, closes), CLOSES_CACHE_SECONDS)
    return closes


def strategy_signal(strategy: Strategy) -> Signal:
    return signal_from_config(
        strategy.signal_type, strategy.parameters, where=f"strategy {strategy.name}"
    )


def signal_frame(signal: Signal, closes: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """``ticker``'s close and each of its indicators (columns ``close`` and the indicator
    names), computed on ``closes`` (the whole universe when the signal is cross-sectional;
    one ticker's column is enough otherwise, every indicator being per column)."""
    frame = {"close": closes[ticker]}
    for name, values in signal.indicators(closes).items():
        frame[name] = values[ticker]
    return pd.DataFrame(frame, index=closes.index)


def signal_figure(
    signal: Signal, frame: pd.DataFrame, n_columns: int, markers: list[dict], ticker: str
) -> dict:
    """The overlay: close with its SMA(s) on top, every other indicator in a panel below
    with the thresholds it is compared with (``Signal.levels``)."""
    p = signal.params
    titles = {
        "score": f"{getattr(p, 'lookback', '')}-bar return",
        "rank": "rank (1 = best)",
        "z": f"z-score ({getattr(p, 'window', '')})",
    }
    levels = signal.levels(n_columns)
    panels = []
    for name in frame.columns:
        if name == "close" or name in PRICE_LEVEL:
            continue
        panel = {
            "column": name,
            "title": titles.get(name, name),
            "levels": {label: y for label, (on, y) in levels.items() if on == name},
            "format": ".0%" if name == "score" else "",
            "reversed": name == "rank",
        }
        panels.append(panel)
    top = ["close", *(c for c in PRICE_LEVEL if c in frame.columns)]
    names = {"close": f"{ticker} close", **_sma_names(p)}
    fig = charts.signal_overlay_figure(
        frame,
        top=top,
        panels=panels,
        markers=markers,
        title=f"{ticker}: signal and fills",
        names=names,
    )
    fig["caption"] += (
        " Indicators from the engine's own signal code on the closes through the as-of "
        "date (row t uses closes up to t only)."
    )
    return fig


def _sma_names(p) -> dict[str, str]:
    names = {}
    if getattr(p, "sma_filter", None):
        names["sma"] = f"SMA {p.sma_filter} (trend filter)"
    elif getattr(p, "window", None):
        names["sma"] = f"SMA {p.window}"
    if getattr(p, "fast", None):
        names["fast"], names["slow"] = f"SMA {p.fast}", f"SMA {p.slow}"
    return names


def sizing_rationale(
    *,
    strategy: Strategy,
    closes: pd.DataFrame,
    positions: list[dict],
    bar_dates: pd.DatetimeIndex,
    whole_shares: bool = False,
) -> list[dict]:
    """Per open position, what produced its quantity: the last signal fill in the ticker,
    the sizing steps of the targets decided at the bar before it (raw signal weight, vol
    scaling, position cap, leverage cap: ``sizing_stages``), and the stored inputs of the
    fill (exposure scale, risk multipliers, equity, close). ``bar_dates`` the strategy's
    applied dates (its snapshots); ``whole_shares`` as the book trades (quantities
    truncated toward zero, ``Book.target_quantity``)."""
    if not positions:
        return []
    stages = spec_sizing_stages(targets_spec(strategy), closes, list(closes.columns))
    risk = risk_config_from_dict(strategy.risk_config)
    fills = selectors.signal_trade_sizing_map(
        strategy=strategy, tickers=[p["ticker"] for p in positions]
    )
    rows = []
    for p in positions:
        fill = fills.get(p["ticker"])
        row = {"ticker": p["ticker"], "held": p["quantity"], "fill": fill}
        if fill is not None:
            at = bar_dates.searchsorted(pd.Timestamp(fill["date"])) - 1
            decided = bar_dates[at] if at >= 0 else None
            row.update(_stages_row(stages, risk, decided, p["ticker"]))
            row.update(_fill_row(fill.get("sizing"), p, row.get("sized"), whole_shares))
        rows.append(row)
    return rows


def _stages_row(stages, risk, decided, ticker: str) -> dict:
    if decided is None or decided not in stages.raw.index or ticker not in stages.raw.columns:
        return {}
    scaled = float(stages.scaled.at[decided, ticker])
    cap = risk.max_position_size
    return {
        "decided": decided.date(),
        "raw": float(stages.raw.at[decided, ticker]),
        "sigma": _finite(stages.sigma.at[decided]),
        "vol_target": risk.volatility_target,
        "vol_scale": float(stages.vol_scale.at[decided]),
        "scaled": scaled,
        "cap": cap,
        "cap_binds": cap is not None and abs(scaled) > cap,
        "capped": float(stages.capped.at[decided, ticker]),
        "max_leverage": risk.max_leverage,
        "leverage_scale": float(stages.leverage_scale.at[decided]),
        "sized": float(stages.sized.at[decided, ticker]),
    }


def _fill_row(sizing: dict | None, position: dict, sized: float | None, whole: bool) -> dict:
    if not sizing:
        return {"stored": False}
    multiplier = position.get("multiplier") or 1.0
    quantity = sizing["weight"] * sizing["equity"] / (sizing["close"] * multiplier)
    if whole:
        quantity = float(math.trunc(quantity))
    risk_multiplier = sizing["portfolio_risk"] * sizing["strategy_risk"]
    return {
        "stored": True,
        "target": sizing["target"],
        "exposure_scale": sizing["exposure_scale"],
        "risk_multiplier": risk_multiplier,
        "reduce_cap_binds": not math.isclose(
            sizing["weight"],
            sizing["target"] * sizing["exposure_scale"] * risk_multiplier,
            rel_tol=1e-12,
            abs_tol=1e-15,
        ),
        "weight": sizing["weight"],
        "equity": sizing["equity"],
        "close": sizing["close"],
        "quantity": quantity,
        "config_changed": sized is not None
        and not math.isclose(sized, sizing["target"], rel_tol=1e-12, abs_tol=1e-15),
        "changed_since": not math.isclose(
            quantity, position["quantity"], rel_tol=QUANTITY_RTOL, abs_tol=1e-9
        ),
    }


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None
