"""Strategy attribution: who made the portfolio's return, and how much of the return over
the target allocation came from deviating from the target weights.

Shapes and units. ``equity`` is a ``pd.DataFrame`` (dates x strategies) of each strategy
book's equity at the close, after that close's capital moves (account currency, >= 0, a
strictly increasing ``DatetimeIndex``); cash kept outside every strategy, if any, must be
its own column. ``flows`` (same shape, optional) is the capital moved *into* each book at
that close (negative = out). Returns are daily simple returns; weights are fractions of
portfolio equity; every result row t is about the day ending at close t, so results start
on the second date of ``equity``.

Notation: E_i,t equity, F_i,t flow, P_t = sum_i E_i,t, F_t = sum_i F_i,t,
r_i,t = (E_i,t - F_i,t) / E_i,t-1 - 1 (strategy return, flows removed),
w_i,t-1 = E_i,t-1 / P_t-1 (weight at the previous close),
r_p,t = (P_t - F_t) / P_t-1 - 1 (portfolio return; F_t = 0 when capital only moves between
strategies, and then r_p,t = P_t / P_t-1 - 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reporting.engine.checks import checked_frame, checked_return_frame

PERIODS = {"M": "M", "Y": "Y"}
WEIGHT_TOLERANCE = 1e-9


def _checked_equity(equity: pd.DataFrame, flows: pd.DataFrame | None):
    """(equity, flows) as float64 after the checks in the module docstring; flows of 0
    when None."""
    e = checked_frame(equity, "equity")
    if (e.to_numpy() < 0).any() or (e.sum(axis=1) <= 0).any():
        raise ValueError("equity must be >= 0 with a positive portfolio total on every date")
    if len(e) < 2:
        raise ValueError("equity needs at least two dates")
    if flows is None:
        return e, pd.DataFrame(0.0, index=e.index, columns=e.columns)
    f = checked_frame(flows, "flows")
    if not (f.index.equals(e.index) and f.columns.equals(e.columns)):
        raise ValueError("flows must have exactly the dates and columns of equity")
    return e, f


def strategy_returns(equity: pd.DataFrame, flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """r_i,t = (E_i,t - F_i,t) / E_i,t-1 - 1, the book's return with the capital moved in
    at close t taken out (module notation). NaN where E_i,t-1 = 0 (an unfunded book has
    no return). Dates: the second onwards."""
    e, f = _checked_equity(equity, flows)
    prev = e.shift(1).iloc[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (e.iloc[1:] - f.iloc[1:]) / prev.where(prev > 0) - 1.0
    return r


def previous_close_weights(equity: pd.DataFrame) -> pd.DataFrame:
    """w_i,t-1 = E_i,t-1 / P_t-1, each book's share of portfolio equity at the previous
    close, on dates 2.. (row t holds the weights that earned day t's returns)."""
    e, _ = _checked_equity(equity, None)
    return e.div(e.sum(axis=1), axis=0).shift(1).iloc[1:]


def daily_contributions(equity: pd.DataFrame, flows: pd.DataFrame | None = None) -> pd.DataFrame:
    """c_i,t = w_i,t-1 * r_i,t, the part of the portfolio's day-t return earned by book i
    (0 for a book with no equity at t-1).

    They add up to the portfolio return exactly: w_i,t-1 r_i,t = (E_i,t - F_i,t -
    E_i,t-1) / P_t-1, so sum_i c_i,t = (P_t - F_t - P_t-1) / P_t-1 = r_p,t. With capital
    moving only between books (F_t = 0) that is P_t / P_t-1 - 1, whatever was moved.
    Equivalently c_i,t is book i's day-t P&L over the previous close's portfolio equity."""
    e, f = _checked_equity(equity, flows)
    prev = e.shift(1).iloc[1:]
    pnl = e.iloc[1:] - f.iloc[1:] - prev
    return pnl.div(prev.sum(axis=1), axis=0)


def _group_keys(index: pd.DatetimeIndex, freq: str | None) -> np.ndarray:
    """An integer period key per date: one group for None, calendar month or year."""
    if freq is None:
        return np.zeros(len(index), dtype=int)
    if freq not in PERIODS:
        raise ValueError(f"freq must be one of {sorted(PERIODS)} or None, got {freq!r}")
    return index.to_period(PERIODS[freq]).asi8


def _growth_before(r: pd.Series, keys: np.ndarray) -> pd.Series:
    """prod_{s<t, s in t's period}(1 + r_s): 1 on each period's first day."""
    growth = (1.0 + r).groupby(keys).cumprod()
    return growth.groupby(keys).shift(1, fill_value=1.0)


def _growth_after(r: pd.Series, keys: np.ndarray) -> pd.Series:
    """prod_{s>t, s in t's period}(1 + r_s): 1 on each period's last day."""
    reverse = _growth_before(r.iloc[::-1], keys[::-1])
    return reverse.iloc[::-1]


def _period_label(index: pd.DatetimeIndex, keys: np.ndarray) -> pd.DatetimeIndex:
    """The last date of each group, in group order."""
    return pd.DatetimeIndex(index.to_series().groupby(keys).max().to_numpy())


def cumulative_contributions(contributions: pd.DataFrame) -> pd.DataFrame:
    """Geometrically linked cumulative contribution of each book, for the stacked chart:
    C_i,T = sum_{t<=T} c_i,t * G_t-1 with G_t = prod_{s<=t}(1 + r_p,s), G_0 = 1 before the
    first day and r_p,t = sum_i c_i,t.

    The stack is exactly the cumulative portfolio return on every date: sum_i C_i,T =
    sum_{t<=T} r_p,t G_t-1 = sum_{t<=T} (G_t - G_t-1) = G_T - 1 (telescoping). Each term
    c_i,t G_t-1 is book i's day-t P&L over the starting portfolio equity (no external
    flows), so no residual needs to be spread as with Carino or Menchero linking.
    ``contributions`` is the output of ``daily_contributions`` (NaN-free)."""
    c = checked_frame(contributions, "contributions")
    before = _growth_before(c.sum(axis=1), _group_keys(c.index, None))
    return c.mul(before, axis=0).cumsum()


def period_contributions(contributions: pd.DataFrame, freq: str = "M") -> pd.DataFrame:
    """Each book's contribution per calendar period ("M" month or "Y" year), linked as in
    ``cumulative_contributions`` from the start of each period: row P holds
    sum_{t in P} c_i,t * prod_{s<t, s in P}(1 + r_p,s), which sums over books to the
    portfolio's compounded return in P, prod_{t in P}(1 + r_p,t) - 1. Rows are labelled
    with each period's last date."""
    c = checked_frame(contributions, "contributions")
    keys = _group_keys(c.index, freq)
    linked = c.mul(_growth_before(c.sum(axis=1), keys), axis=0)
    result = linked.groupby(keys).sum()
    result.index = _period_label(c.index, keys)
    return result


# --- Brinson-Fachler against the target allocation -----------------------------------------


@dataclass(frozen=True)
class BrinsonEffects:
    """Brinson-Fachler effects per strategy (Series indexed by strategy) and the two
    returns they explain: allocation + selection + interaction summed over strategies =
    portfolio_return - benchmark_return = active_return."""

    allocation: pd.Series
    selection: pd.Series
    interaction: pd.Series
    portfolio_return: float
    benchmark_return: float

    @property
    def active_return(self) -> float:
        """portfolio_return - benchmark_return."""
        return self.portfolio_return - self.benchmark_return

    @property
    def total(self) -> pd.Series:
        """allocation + selection + interaction per strategy."""
        return self.allocation + self.selection + self.interaction


def _checked_weights(weights: pd.Series, name: str) -> pd.Series:
    """``weights`` as float64 after checking they are finite and sum to 1 (+-1e-9)."""
    w = weights.astype("float64")
    if not np.isfinite(w.to_numpy()).all() or abs(w.sum() - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{name} must be finite and sum to 1 (put cash in its own entry)")
    return w


def brinson_fachler(
    weights: pd.Series,
    target_weights: pd.Series,
    returns: pd.Series,
    segment_benchmark_returns: pd.Series | None = None,
) -> BrinsonEffects:
    """Single-period Brinson-Fachler attribution at the strategy level. Inputs are Series
    over the same strategies: w_i actual weights at the start of the period, b_i target
    weights (each summing to 1), r_i strategy returns over the period, and optionally B_i,
    the return of a passive alternative for each strategy (default B_i = r_i).

    R_p = sum w_i r_i, R_b = sum b_i B_i (the target-weighted mix),
    allocation A_i = (w_i - b_i)(B_i - R_b), selection S_i = b_i (r_i - B_i),
    interaction I_i = (w_i - b_i)(r_i - B_i).
    Summed over i: sum A = sum w B - R_b (as sum w = sum b = 1), sum S = sum b r - R_b,
    sum I = R_p - sum w B - sum b r + R_b; together R_p - R_b, the active return.

    By default the benchmark holds the very books the portfolio holds, so B_i = r_i and
    selection and interaction are identically zero: the whole active return is allocation,
    the effect of being off the target weights (drift between rebalances, risk actions,
    paused books). Pass B_i (e.g. the S&P 500 or each book's universe equal-weighted) to
    also measure each book's selection against its passive alternative."""
    w = _checked_weights(weights, "weights")
    b = _checked_weights(target_weights, "target_weights")
    r = returns.astype("float64")
    seg = r if segment_benchmark_returns is None else segment_benchmark_returns.astype(float)
    for name, s in (("target_weights", b), ("returns", r), ("segment_benchmark_returns", seg)):
        if not s.index.sort_values().equals(w.index.sort_values()):
            raise ValueError(f"{name} must cover exactly the strategies of weights")
    b, r, seg = b.reindex(w.index), r.reindex(w.index), seg.reindex(w.index)
    if not (np.isfinite(r.to_numpy()).all() and np.isfinite(seg.to_numpy()).all()):
        raise ValueError("returns and segment_benchmark_returns must be finite")
    rb = float((b * seg).sum())
    return BrinsonEffects(
        allocation=(w - b) * (seg - rb),
        selection=b * (r - seg),
        interaction=(w - b) * (r - seg),
        portfolio_return=float((w * r).sum()),
        benchmark_return=rb,
    )


def _daily_effects(prev_weights, target_weights, returns, segment_benchmark_returns):
    """(allocation, selection, interaction frames, r_p, r_b) of each day, as in
    ``brinson_fachler`` with that day's previous-close weights."""
    w = checked_frame(prev_weights, "prev_weights")
    r = checked_return_frame(returns, "returns")
    seg = r if segment_benchmark_returns is None else segment_benchmark_returns
    seg = checked_return_frame(seg, "segment_benchmark_returns")
    b = _checked_weights(target_weights, "target_weights")
    for name, f in (("returns", r), ("segment_benchmark_returns", seg)):
        if not (f.index.equals(w.index) and f.columns.equals(w.columns)):
            raise ValueError(f"{name} must have exactly the dates and columns of prev_weights")
    if set(b.index) != set(w.columns):
        raise ValueError("target_weights must cover exactly the columns of prev_weights")
    if (w.sum(axis=1) - 1.0).abs().max() > WEIGHT_TOLERANCE:
        raise ValueError("each row of prev_weights must sum to 1")
    b = b.reindex(w.columns)
    rb = seg.mul(b, axis=1).sum(axis=1)
    active_w = w.sub(b, axis=1)
    allocation = active_w * seg.sub(rb, axis=0)
    selection = (r - seg).mul(b, axis=1)
    interaction = active_w * (r - seg)
    return allocation, selection, interaction, (w * r).sum(axis=1), rb


def _linked(prev_weights, target_weights, returns, segment_benchmark_returns, freq):
    """Daily effects scaled by the GRAP linking factor (see ``linked_brinson_fachler``)."""
    a, s, i, rp, rb = _daily_effects(
        prev_weights, target_weights, returns, segment_benchmark_returns
    )
    keys = _group_keys(a.index, freq)
    k = _growth_before(rp, keys) * _growth_after(rb, keys)
    return a.mul(k, axis=0), s.mul(k, axis=0), i.mul(k, axis=0), rp, rb, keys


def linked_brinson_fachler(
    prev_weights: pd.DataFrame,
    target_weights: pd.Series,
    returns: pd.DataFrame,
    segment_benchmark_returns: pd.DataFrame | None = None,
) -> BrinsonEffects:
    """Brinson-Fachler over many days. ``prev_weights`` (``previous_close_weights``) and
    ``returns`` (``strategy_returns``, NaN-free) are dates x strategies; ``target_weights``
    is the static target allocation; B_i,t as in ``brinson_fachler`` (default r_i,t). The
    benchmark is the target mix rebalanced daily: R_b,t = sum_i b_i B_i,t.

    Each day is attributed with ``brinson_fachler`` and the days are linked with GRAP
    (Frongello 2002): effect_t is scaled by k_t = prod_{s<t}(1 + R_p,s) prod_{s>t}(1 +
    R_b,s). With X_t = prod_{s<=t}(1 + R_p,s) prod_{s>t}(1 + R_b,s), X_t - X_t-1 =
    k_t (R_p,t - R_b,t), so the linked effects sum exactly to prod(1 + R_p) -
    prod(1 + R_b), the active return of the span, with no residual."""
    a, s, i, rp, rb, _ = _linked(
        prev_weights, target_weights, returns, segment_benchmark_returns, None
    )
    return BrinsonEffects(
        allocation=a.sum(),
        selection=s.sum(),
        interaction=i.sum(),
        portfolio_return=float(np.prod(1.0 + rp.to_numpy()) - 1.0),
        benchmark_return=float(np.prod(1.0 + rb.to_numpy()) - 1.0),
    )


def period_brinson_fachler(
    prev_weights: pd.DataFrame,
    target_weights: pd.Series,
    returns: pd.DataFrame,
    segment_benchmark_returns: pd.DataFrame | None = None,
    freq: str = "M",
) -> pd.DataFrame:
    """``linked_brinson_fachler`` per calendar period ("M" or "Y"), summed over strategies:
    one row per period (labelled by its last date) with allocation, selection,
    interaction, portfolio_return, benchmark_return and active_return (compounded within
    the period; the three effects sum to active_return)."""
    a, s, i, rp, rb, keys = _linked(
        prev_weights, target_weights, returns, segment_benchmark_returns, freq
    )
    result = pd.DataFrame(
        {
            "allocation": a.sum(axis=1).groupby(keys).sum().to_numpy(),
            "selection": s.sum(axis=1).groupby(keys).sum().to_numpy(),
            "interaction": i.sum(axis=1).groupby(keys).sum().to_numpy(),
            "portfolio_return": (1.0 + rp).groupby(keys).prod().to_numpy() - 1.0,
            "benchmark_return": (1.0 + rb).groupby(keys).prod().to_numpy() - 1.0,
        },
        index=_period_label(a.index, keys),
    )
    result["active_return"] = result["portfolio_return"] - result["benchmark_return"]
    return result


# --- Brinson-Fachler by sector against the equal-weight universe ---------------------------

CASH_SEGMENT = "Cash and costs"
FLAT_WEIGHT = 1e-12  # gross weight at or below this: the segment holds nothing


@dataclass(frozen=True)
class SectorBrinson:
    """``sector_brinson``'s result: the linked effects per sector (``effects``), the
    daily inputs they came from (weights w, benchmark weights b, returns r and B, dates x
    segments) and the same decomposition per calendar period (``periods``)."""

    effects: BrinsonEffects
    weights: pd.DataFrame
    benchmark_weights: pd.Series
    returns: pd.DataFrame
    benchmark_returns: pd.DataFrame
    periods: pd.DataFrame


def net_holdings(fills: pd.DataFrame, dates: pd.DatetimeIndex, tickers: list[str]) -> pd.DataFrame:
    """q_k,t: the net quantity of ticker k across every book after the fills of close t
    (dates x tickers, 0 before the first fill). ``fills`` has columns ticker, date, side
    ("buy"/"sell") and quantity (> 0); fills on dates outside ``dates`` count from the
    next date on."""
    if fills.empty:
        return pd.DataFrame(0.0, index=dates, columns=tickers)
    signed = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy(
        dtype=float
    )
    moves = (
        pd.DataFrame({"date": pd.to_datetime(fills["date"]), "t": fills["ticker"], "q": signed})
        .pivot_table(index="date", columns="t", values="q", aggfunc="sum")
        .reindex(columns=tickers, fill_value=0.0)
        .fillna(0.0)
    )
    held = moves.cumsum().reindex(moves.index.union(dates)).ffill().fillna(0.0)
    return held.reindex(dates)


def sector_brinson(
    *,
    holdings: pd.DataFrame,
    closes: pd.DataFrame,
    sectors: pd.Series,
    equity: pd.Series,
    portfolio_returns: pd.Series,
    multipliers: pd.Series | None = None,
    freq: str = "Y",
) -> SectorBrinson:
    """Brinson-Fachler of the whole portfolio (every book netted by ticker) by sector,
    against the equal-weight universe: every ticker of ``closes`` at 1/N, rebalanced
    daily. Inputs: ``holdings`` q_k,t (``net_holdings``) and ``closes`` (ffilled, NaN
    before a ticker's first bar; dates x tickers on the portfolio's dates), ``sectors``
    (ticker -> sector), ``equity`` P_t and ``portfolio_returns`` r_p,t (the stored
    portfolio return of day t), ``multipliers`` (ticker -> contract multiplier, default 1).

    Segments s are the sectors plus ``CASH_SEGMENT``. For day t (weights of close t-1):
    w_s = sum_{k in s} q_k,t-1 P_k,t-1 m_k / P_t-1, the sector's net weight;
    c_s = sum_{k in s} q_k,t-1 (P_k,t - P_k,t-1) m_k / P_t-1, its contribution;
    r_s = c_s / g_s, the sector's return in the portfolio per unit of its gross weight
    g_s = sum_{k in s} |q_k,t-1 P_k,t-1 m_k| / P_t-1 (= c_s / w_s for a sector held long
    only; for longs and shorts netted across books, w_s can be near 0 while g_s is not,
    and c_s / w_s would be meaningless);
    b_s = n_s / N, the sector's share of the universe's tickers; B_s = the mean simple
    return of its tickers that day (0 before any has two bars); R_b = sum_s b_s B_s.
    The cash segment holds the rest: w_c = 1 - sum_s w_s, b_c = B_c = 0 and
    c_c = r_p,t - sum_s c_s (cash earns nothing here, so c_c is the fills' costs and any
    rounding), so that sum_s c_s = r_p,t exactly, including cash.

    Effects (``brinson_fachler``): allocation A_s = (w_s - b_s)(B_s - R_b); selection
    S_s = b_s (r_s - B_s) (0 for a flat sector, g_s <= 1e-12, and for cash, b = 0);
    interaction I_s = c_s - w_s B_s - S_s, which is (w_s - b_s)(r_s - B_s) for a
    long-only sector (as S + I = w (r - B) = c - w B) and otherwise the rest of the
    sector's active contribution; cash's interaction is c_c, its costs.
    Per day sum_s (A + S + I) = sum_s c_s - R_b = r_p,t - R_b.
    Linking (GRAP, Frongello 2002, as ``linked_brinson_fachler``): day t's effects are
    scaled by k_t = prod_{s<t}(1 + r_p,s) prod_{s>t}(1 + R_b,s), so the linked effects
    sum exactly to prod(1 + r_p) - prod(1 + R_b), the span's active return (no residual,
    unlike a simple sum or Carino's log scaling); ``periods`` is the same per calendar
    period ("Y" or "M", linked and compounded within each period)."""
    close = checked_frame(closes, "closes", allow_nan=True)
    if not holdings.index.equals(close.index) or not holdings.columns.equals(close.columns):
        raise ValueError("holdings must have exactly the dates and tickers of closes")
    w, g, c, bench, b, rp = _sector_segments(
        holdings, close, sectors, equity, portfolio_returns, multipliers
    )
    allocation, selection, interaction, r, rb = _sector_effects(w, g, c, bench, b)
    effects, periods = _grap_linked(allocation, selection, interaction, rp, rb, freq)
    return SectorBrinson(effects, w, b, r, bench, periods)


def _sector_segments(holdings, close, sectors, equity, portfolio_returns, multipliers):
    """``sector_brinson``'s daily segment frames (dates after the first x sectors plus
    ``CASH_SEGMENT``, weights of close t-1): net weight w_s, gross weight g_s, contribution
    c_s, the universe's mean return B_s, the universe share b_s (a Series), and r_p,t on
    those dates; cash holds the rest (w_c = 1 - sum_s w_s, c_c = r_p,t - sum_s c_s,
    g_c = B_c = b_c = 0). Formulas in ``sector_brinson``."""
    m = (multipliers if multipliers is not None else pd.Series(dtype=float)).reindex(close.columns)
    m = m.fillna(1.0)
    sector = sectors.reindex(close.columns).fillna("Unknown")
    position_value = holdings * close.fillna(0.0) * m
    value = position_value.T.groupby(sector).sum().T
    gross = position_value.abs().T.groupby(sector).sum().T
    pnl = (holdings.shift(1) * close.diff() * m).fillna(0.0).T.groupby(sector).sum().T
    p = equity.reindex(close.index).astype(float)
    w = value.div(p, axis=0).shift(1).iloc[1:]
    g = gross.div(p, axis=0).shift(1).iloc[1:]
    c = pnl.div(p.shift(1), axis=0).iloc[1:]
    bench = close.pct_change(fill_method=None).T.groupby(sector).mean().T.iloc[1:].fillna(0.0)
    counts = sector.value_counts()
    b = (counts / counts.sum()).reindex(w.columns)
    rp = portfolio_returns.reindex(w.index).astype(float)
    w[CASH_SEGMENT] = 1.0 - w.sum(axis=1)
    g[CASH_SEGMENT] = 0.0
    c[CASH_SEGMENT] = rp - c.sum(axis=1)
    bench[CASH_SEGMENT] = 0.0
    b[CASH_SEGMENT] = 0.0
    return w, g, c, bench, b, rp


def _sector_effects(w, g, c, bench, b):
    """``sector_brinson``'s daily Brinson-Fachler effects of the segments: (allocation A_s,
    selection S_s, interaction I_s, the segment return r_s = c_s / g_s (NaN for a flat
    sector, g_s <= ``FLAT_WEIGHT``, and for cash), R_b = sum_s b_s B_s). Formulas in
    ``sector_brinson``."""
    rb = bench.mul(b, axis=1).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (c / g).where(g > FLAT_WEIGHT)
    r[CASH_SEGMENT] = np.nan
    selection = (r - bench).mul(b, axis=1).fillna(0.0)
    allocation = w.sub(b, axis=1) * bench.sub(rb, axis=0)
    interaction = c - w * bench - selection
    return allocation, selection, interaction, r, rb


def _grap_linked(allocation, selection, interaction, rp, rb, freq):
    """(BrinsonEffects over the span, per-period frame as ``period_brinson_fachler``) of
    daily effects linked with GRAP (see ``linked_brinson_fachler``)."""
    span = _group_keys(rp.index, None)
    k = _growth_before(rp, span) * _growth_after(rb, span)
    effects = BrinsonEffects(
        allocation=allocation.mul(k, axis=0).sum(),
        selection=selection.mul(k, axis=0).sum(),
        interaction=interaction.mul(k, axis=0).sum(),
        portfolio_return=float(np.prod(1.0 + rp.to_numpy()) - 1.0),
        benchmark_return=float(np.prod(1.0 + rb.to_numpy()) - 1.0),
    )
    keys = _group_keys(rp.index, freq)
    k = _growth_before(rp, keys) * _growth_after(rb, keys)
    periods = pd.DataFrame(
        {
            name: frame.mul(k, axis=0).sum(axis=1).groupby(keys).sum().to_numpy()
            for name, frame in (
                ("allocation", allocation),
                ("selection", selection),
                ("interaction", interaction),
            )
        },
        index=_period_label(rp.index, keys),
    )
    periods["portfolio_return"] = (1.0 + rp).groupby(keys).prod().to_numpy() - 1.0
    periods["benchmark_return"] = (1.0 + rb).groupby(keys).prod().to_numpy() - 1.0
    periods["active_return"] = periods["portfolio_return"] - periods["benchmark_return"]
    return effects, periods
