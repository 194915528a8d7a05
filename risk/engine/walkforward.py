"""Strategy variants side by side, and walk-forward validation of the choice between them.

Shapes and units. ``closes``: a DataFrame on an ascending, unique DatetimeIndex of bar
dates, one float column per ticker (NaN where there is no bar), prices in the quote
currency. ``variant_returns`` gives a DataFrame on the same index, one column per variant
(its label), of the daily simple returns (fractions, 0.01 = +1 %) of one paper book
trading that variant; row 0 is the funding day, 0.0. ``walk_forward`` reads any such
frame (dates x variants, no NaN); windows (``in_sample``, ``out_of_sample``, ``step``)
are counts of its rows (bars). Scores and metrics follow ``risk.engine.metrics``: 252
trading days a year, sample std (ddof=1), risk-free 0, drawdowns negative fractions of
the running peak. Total return is ``prod(1 + r) - 1`` over the rows in question (the
annual return lives in ``reporting``, which ``risk`` may not import).

Each variant is simulated through the product's own engine, the one the live book runs:
the signal (``portfolio.engine.signals``), the strategy's sizing rules
(``portfolio.engine.sizing``, as ``portfolio.services.books.spec_targets`` applies them)
and the daily cycle (``portfolio.engine.cycle.apply_dates``) on a one-book portfolio
funded with ``capital``, so fills, costs and trading days are the live book's.

No look-ahead, by construction. The return of a book at bar t depends on prices through
close t only: the orders filled at close t were decided with data through close t-1
(every signal and sizing rule is strictly causal, rolling statistics run forward) and
the book is marked at close t. So changing prices dated after some bar cannot change any
return dated at or before it. ``walk_forward`` chooses each fold's variant from the rows
of its in-sample window alone (the slice is taken before any score is computed), so a
fold's choice and in-sample scores cannot depend on any price dated after its in-sample
window ends; the out-of-sample rows are read only to report what the choice earned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from portfolio.engine.book import Book, Execution
from portfolio.engine.cycle import PortfolioState, StrategyState, apply_dates
from portfolio.engine.signals import signal_from_config
from portfolio.engine.sizing import risk_config_from_dict, sizing_stages

from risk.engine.metrics import max_drawdown, sharpe_ratio

WALK_FORWARD = "walk-forward"  # the label of the stitched out-of-sample row
_BOOK = "variant"


# --- variants through the engine -----------------------------------------------------------


def variant_label(variant: Mapping[str, Any]) -> str:
    """A short label for a variant's overrides: ``"lookback=60"``, keys in the given order
    joined by ``", "``; ``"base"`` for no override."""
    if not variant:
        return "base"
    return ", ".join(f"{key}={value}" for key, value in variant.items())


def variant_returns(
    *,
    closes: pd.DataFrame,
    signal_type: str,
    base_parameters: Mapping[str, Any],
    variants: list[Mapping[str, Any]],
    capital: float,
    execution: Execution | None = None,
    risk_config: Mapping[str, Any] | None = None,
    multipliers: Mapping[str, float] | None = None,
    labels: list[str] | None = None,
) -> pd.DataFrame:
    """Daily simple returns of one book per variant, dates x variants (module docstring).

    Variant i trades ``signal_type`` with parameters ``base_parameters | variants[i]``,
    sized by ``risk_config`` (the strategy's sizing rules; None: none), filling under
    ``execution`` (commission, slippage, whole shares, trade band; None: costless
    fractional fills) with contract ``multipliers`` (default 1), in its own portfolio
    funded with ``capital`` at the first bar. ``r_t = E_t / E_{t-1} - 1`` with ``E`` the
    book's equity at close t (the engine's ``StrategyDay.daily_return``). Columns are
    ``labels`` or ``variant_label`` of each variant. Raises ValueError (a ``ConfigError``
    naming the field for a bad parameter) for no variants, duplicate labels, bad closes
    or a non-positive capital."""
    if not variants:
        raise ValueError("variants: give at least one variant (an empty dict is the base)")
    names = list(labels) if labels is not None else [variant_label(v) for v in variants]
    if len(names) != len(variants):
        raise ValueError(f"labels: {len(names)} labels for {len(variants)} variants")
    _check_unique(names, "variant labels")
    _check_closes(closes)
    if not (isinstance(capital, int | float) and math.isfinite(capital) and capital > 0):
        raise ValueError(f"capital: must be a positive number, got {capital!r}")
    execution = execution or Execution()
    risk = risk_config_from_dict(risk_config, where="variants.risk_config")
    columns = {}
    for name, variant in zip(names, variants, strict=True):
        signal = signal_from_config(
            signal_type, {**base_parameters, **variant}, where=f"variant {name}"
        )
        targets = sizing_stages(signal.targets(closes), closes, risk).sized
        columns[name] = _book_returns(
            closes, targets, signal.frequency, float(capital), execution, multipliers
        )
    return pd.DataFrame(columns, index=closes.index, columns=names)


def _book_returns(
    closes: pd.DataFrame,
    targets: pd.DataFrame,
    frequency: str,
    capital: float,
    execution: Execution,
    multipliers: Mapping[str, float] | None,
) -> np.ndarray:
    """One book's daily returns through ``apply_dates``: a one-strategy portfolio holding
    all its capital in that book, with no portfolio rebalance (with one book a rebalance
    would move nothing) and no risk hook."""
    book = StrategyState(
        name=_BOOK,
        allocation=1.0,
        static_allocation=1.0,
        active=True,
        frequency=frequency,
        execution=execution,
        book=Book(multipliers=dict(multipliers or {})),
    )
    state = PortfolioState(
        initial_capital=capital,
        leverage_target=1.0,
        strategies=[book],
        rebalance_trigger="manual",
    )
    days = apply_dates(state, closes, {_BOOK: targets}, list(closes.index.date))
    return np.array([day.strategies[0].daily_return for day in days], dtype=float)


def _check_closes(closes: pd.DataFrame) -> None:
    if not isinstance(closes, pd.DataFrame) or not isinstance(closes.index, pd.DatetimeIndex):
        raise ValueError("closes: must be a DataFrame on a DatetimeIndex of bar dates")
    if closes.empty:
        raise ValueError("closes: no rows or no tickers")
    if not closes.index.is_monotonic_increasing or not closes.index.is_unique:
        raise ValueError("closes: the index must be unique bar dates in ascending order")
    _check_unique([str(c) for c in closes.columns], "closes columns")


def _check_unique(names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what}: duplicate label {name!r}")
        seen.add(name)


# --- scores --------------------------------------------------------------------------------


def total_return(returns: np.ndarray) -> float:
    """Compounded total return ``prod(1 + r) - 1`` of daily simple returns; 0.0 when
    empty."""
    return float(np.prod(1.0 + np.asarray(returns, dtype=float)) - 1.0)


# Each maps daily returns (n,) to a number where higher is better: Sharpe
# (``metrics.sharpe_ratio``, risk-free 0), total return, and max drawdown (<= 0, so the
# shallowest drawdown scores highest).
SCORES = {
    "sharpe": sharpe_ratio,
    "total_return": total_return,
    "max_drawdown": max_drawdown,
}


def _best(scores: np.ndarray) -> int:
    """Index of the highest score; ties go to the first; NaN (undefined: e.g. a Sharpe of
    a book that held cash all window) ranks below every number; all NaN: the first."""
    best = 0
    for i in range(1, len(scores)):
        if not math.isnan(scores[i]) and (math.isnan(scores[best]) or scores[i] > scores[best]):
            best = i
    return best


def _num(x: float) -> float | None:
    """A float for JSON: NaN and +-inf (undefined) as None."""
    x = float(x)
    return x if math.isfinite(x) else None


def _day(x: Any) -> date:
    return pd.Timestamp(x).date()


# --- walk-forward --------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold. Windows are inclusive date ranges of the returns frame's
    rows. ``chosen``: the variant with the best in-sample score (``walk_forward``);
    ``in_sample_scores`` and ``out_of_sample_scores``: every variant's score (label ->
    value, NaN where undefined) over each window; ``oos_return`` (total return),
    ``oos_sharpe`` and ``oos_max_drawdown``: the chosen variant over the whole
    out-of-sample window."""

    number: int  # 0-based, in date order
    in_sample_start: date
    in_sample_end: date
    out_of_sample_start: date
    out_of_sample_end: date
    chosen: str
    in_sample_scores: dict[str, float]
    out_of_sample_scores: dict[str, float]
    oos_return: float
    oos_sharpe: float
    oos_max_drawdown: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO dates, NaN as None."""
        return {
            "number": self.number,
            "in_sample_start": self.in_sample_start.isoformat(),
            "in_sample_end": self.in_sample_end.isoformat(),
            "out_of_sample_start": self.out_of_sample_start.isoformat(),
            "out_of_sample_end": self.out_of_sample_end.isoformat(),
            "chosen": self.chosen,
            "in_sample_scores": {k: _num(v) for k, v in self.in_sample_scores.items()},
            "out_of_sample_scores": {k: _num(v) for k, v in self.out_of_sample_scores.items()},
            "oos_return": _num(self.oos_return),
            "oos_sharpe": _num(self.oos_sharpe),
            "oos_max_drawdown": _num(self.oos_max_drawdown),
        }


@dataclass(frozen=True)
class VariantSummary:
    """One row of the comparison table. ``total_return``, ``sharpe`` and ``max_drawdown``
    over every row of the returns frame (the walk-forward row: over its stitched
    out-of-sample rows); ``oos_total_return`` over the stitched out-of-sample dates only,
    the same dates the walk-forward curve covers, so the two compare like with like;
    ``times_chosen`` (walk-forward: the number of folds); ``mean_oos_score`` the mean of
    its out-of-sample scores over the folds, NaN scores left out, NaN if none is defined
    (walk-forward: the mean over folds of the chosen variant's)."""

    label: str
    total_return: float
    sharpe: float
    max_drawdown: float
    oos_total_return: float
    times_chosen: int
    mean_oos_score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN as None."""
        return {
            "label": self.label,
            "total_return": _num(self.total_return),
            "sharpe": _num(self.sharpe),
            "max_drawdown": _num(self.max_drawdown),
            "oos_total_return": _num(self.oos_total_return),
            "times_chosen": self.times_chosen,
            "mean_oos_score": _num(self.mean_oos_score),
        }


@dataclass(frozen=True)
class WalkForwardResult:
    """What ``walk_forward`` found. ``oos_returns``: the stitched out-of-sample daily
    returns (a Series on the covered dates, named ``"walk-forward"``) and ``oos_chosen``
    the variant each date took them from; ``variants`` one summary per variant in column
    order, ``walk_forward`` the stitched curve's."""

    score: str
    in_sample: int
    out_of_sample: int
    step: int
    anchored: bool
    labels: tuple[str, ...]
    folds: tuple[Fold, ...]
    oos_returns: pd.Series
    oos_chosen: pd.Series
    variants: tuple[VariantSummary, ...]
    walk_forward: VariantSummary

    @property
    def oos_equity(self) -> pd.Series:
        """The stitched out-of-sample curve as a growth of 1: ``prod(1 + r)`` through each
        date."""
        return (1.0 + self.oos_returns).cumprod()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO dates, plain floats (NaN as None)."""
        return {
            "score": self.score,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
            "step": self.step,
            "anchored": self.anchored,
            "labels": list(self.labels),
            "folds": [f.to_dict() for f in self.folds],
            "oos": {
                "dates": [_day(d).isoformat() for d in self.oos_returns.index],
                "returns": [_num(v) for v in self.oos_returns.to_numpy()],
                "equity": [_num(v) for v in self.oos_equity.to_numpy()],
                "chosen": [str(v) for v in self.oos_chosen.to_numpy()],
            },
            "variants": [v.to_dict() for v in self.variants],
            "walk_forward": self.walk_forward.to_dict(),
        }


def fold_windows(
    *, n_rows: int, in_sample: int, out_of_sample: int, step: int, anchored: bool
) -> list[tuple[int, int, int]]:
    """The folds' row windows as ``(in_sample_start, split, out_of_sample_stop)``:
    in-sample rows ``[in_sample_start, split)``, out-of-sample rows
    ``[split, out_of_sample_stop)``. Fold k has ``split = in_sample + k * step`` and
    in-sample start ``split - in_sample`` (rolling) or 0 (anchored: the window grows);
    folds run while the whole out-of-sample window fits (rows after the last one are
    left out)."""
    out = []
    split = in_sample
    while split + out_of_sample <= n_rows:
        out.append((0 if anchored else split - in_sample, split, split + out_of_sample))
        split += step
    return out


def walk_forward(
    *,
    returns: pd.DataFrame,
    in_sample: int,
    out_of_sample: int,
    step: int | None = None,
    score: str = "sharpe",
    anchored: bool = False,
) -> WalkForwardResult:
    """Walk-forward validation of the choice between variants (dates x variants returns).

    For each fold (``fold_windows``; ``step`` defaults to ``out_of_sample``, so the
    out-of-sample windows tile the dates) every variant is scored (``SCORES[score]``) on
    the fold's in-sample rows alone, the best is chosen (``_best``: ties to the first
    column, NaN last), and every variant is scored on the out-of-sample rows. The chosen
    variants' out-of-sample returns are stitched into one series: each covered date takes
    the return of the variant chosen by the latest fold whose out-of-sample window holds
    it (with ``step < out_of_sample`` windows overlap and the newer choice wins; with
    ``step > out_of_sample`` the dates between windows are not covered). Nothing a fold
    chooses reads a row after its in-sample window (module docstring).

    Raises ValueError for no variants, duplicate labels, NaN or infinite returns, an
    unsorted index, an unknown score, windows below 1 row (in-sample below 2: a Sharpe
    needs two) or in-sample plus out-of-sample longer than the data."""
    step = out_of_sample if step is None else step
    values = _check_walk_forward(returns, in_sample, out_of_sample, step, score)
    labels = tuple(str(c) for c in returns.columns)
    windows = fold_windows(
        n_rows=len(values),
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        step=step,
        anchored=anchored,
    )
    chosen_at = np.full(len(values), -1)
    folds = []
    for number, window in enumerate(windows):
        fold, pick = _fold(number, window, values, returns.index, labels, SCORES[score])
        chosen_at[window[1] : window[2]] = pick  # a later fold overwrites an overlap
        folds.append(fold)
    covered = np.flatnonzero(chosen_at >= 0)
    oos = pd.Series(values[covered, chosen_at[covered]], index=returns.index[covered])
    oos.name = WALK_FORWARD
    chosen = pd.Series([labels[j] for j in chosen_at[covered]], index=oos.index, dtype=object)
    return WalkForwardResult(
        score=score,
        in_sample=in_sample,
        out_of_sample=out_of_sample,
        step=step,
        anchored=anchored,
        labels=labels,
        folds=tuple(folds),
        oos_returns=oos,
        oos_chosen=chosen,
        variants=tuple(
            _variant_summary(values, covered, folds, labels, j) for j in range(len(labels))
        ),
        walk_forward=_walk_forward_summary(oos.to_numpy(), folds),
    )


def _fold(number: int, window, values: np.ndarray, index, labels, measure) -> tuple[Fold, int]:
    """One fold from its row window ``(start, split, stop)``, and the chosen column."""
    start, split, stop = window
    # The choice is made from the in-sample slice alone, before the out-of-sample rows
    # are read.
    in_scores = [float(measure(values[start:split, j])) for j in range(len(labels))]
    pick = _best(np.array(in_scores))
    out_rows = values[split:stop]
    out_scores = [float(measure(out_rows[:, j])) for j in range(len(labels))]
    fold = Fold(
        number=number,
        in_sample_start=_day(index[start]),
        in_sample_end=_day(index[split - 1]),
        out_of_sample_start=_day(index[split]),
        out_of_sample_end=_day(index[stop - 1]),
        chosen=labels[pick],
        in_sample_scores=dict(zip(labels, in_scores, strict=True)),
        out_of_sample_scores=dict(zip(labels, out_scores, strict=True)),
        oos_return=total_return(out_rows[:, pick]),
        oos_sharpe=sharpe_ratio(out_rows[:, pick]),
        oos_max_drawdown=max_drawdown(out_rows[:, pick]),
    )
    return fold, pick


def _mean_defined(xs: list[float]) -> float:
    defined = [x for x in xs if not math.isnan(x)]
    return math.fsum(defined) / len(defined) if defined else math.nan


def _variant_summary(values, covered, folds: list[Fold], labels, j: int) -> VariantSummary:
    r = values[:, j]
    label = labels[j]
    return VariantSummary(
        label=label,
        total_return=total_return(r),
        sharpe=sharpe_ratio(r),
        max_drawdown=max_drawdown(r),
        oos_total_return=total_return(r[covered]),
        times_chosen=sum(1 for f in folds if f.chosen == label),
        mean_oos_score=_mean_defined([f.out_of_sample_scores[label] for f in folds]),
    )


def _walk_forward_summary(oos: np.ndarray, folds: list[Fold]) -> VariantSummary:
    return VariantSummary(
        label=WALK_FORWARD,
        total_return=total_return(oos),
        sharpe=sharpe_ratio(oos),
        max_drawdown=max_drawdown(oos),
        oos_total_return=total_return(oos),
        times_chosen=len(folds),
        mean_oos_score=_mean_defined([f.out_of_sample_scores[f.chosen] for f in folds]),
    )


def _check_walk_forward(
    returns: pd.DataFrame, in_sample: int, out_of_sample: int, step: int, score: str
) -> np.ndarray:
    if score not in SCORES:
        raise ValueError(f"score: unknown {score!r}; known: {', '.join(SCORES)}")
    if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
        raise ValueError("returns: give a DataFrame with at least one variant column")
    _check_unique([str(c) for c in returns.columns], "returns columns")
    if not returns.index.is_monotonic_increasing or not returns.index.is_unique:
        raise ValueError("returns: the index must be unique dates in ascending order")
    for name, value, least in (
        ("in_sample", in_sample, 2),
        ("out_of_sample", out_of_sample, 1),
        ("step", step, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise ValueError(f"{name}: must be an integer >= {least} rows, got {value!r}")
    if in_sample + out_of_sample > len(returns):
        raise ValueError(
            f"windows: in_sample + out_of_sample = {in_sample + out_of_sample} rows, "
            f"longer than the {len(returns)} rows of returns"
        )
    values = returns.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("returns: NaN or infinite values (drop or fill the rows first)")
    return values
