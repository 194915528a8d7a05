"""The benchmark workload (issue 12): seeded, reproducible, written as files that
``manage.py backtest --config --data`` reads.

Prices: a stationary block bootstrap (Politis and Romano 1994) of the bundled real daily
returns (``portfolio.feeds.BundledProvider``, the 20 stocks, the S&P 500 index left out).
Blocks start at a uniformly drawn bundled date and have geometric lengths with mean 21
(p = 1/21), wrapping around the end of the sample; whole rows (dates) are resampled, so
the tickers' cross-correlation and each ticker's volatility clustering within a block
stay. Prices are ``100 * cumprod(1 + r)`` per column on a business-day calendar starting
2000-01-03; the first bar is 100 for every ticker. The scale variant bootstraps columns
too: ``n_tickers`` columns drawn with replacement from the 20, each with its own name
(``AAPL``, ``AAPL.2``, ...).

Strategies: ``n_strategies`` monthly top-5 momentum strategies (``MomentumSignalV2``,
``sma_filter`` null: no trend filter), lookbacks spread evenly over 20..200 bars (20, 40,
..., 200 for 10), equal static allocations, a monthly periodic rebalance with ``cash``
execution, costs off (commission and slippage 0), fractional quantities, no risk config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MEAN_BLOCK = 21
START = "2000-01-03"
INITIAL_CAPITAL = 1_000_000.0
TOP_N = 5


@dataclass(frozen=True)
class Workload:
    n_bars: int = 5001
    n_tickers: int = 20
    n_strategies: int = 10
    seed: int = 12

    @classmethod
    def scale(cls) -> Workload:
        return cls(n_bars=5001, n_tickers=100, n_strategies=100)


def bundled_returns() -> pd.DataFrame:
    """Daily simple returns of the 20 bundled stocks (the first bundled date dropped)."""
    from portfolio.feeds import BundledProvider

    closes = BundledProvider().closes_frame().drop(columns=["SP500"])
    return closes.pct_change().iloc[1:]


def block_starts_lengths(
    rng: np.random.Generator, n_rows: int, n_source: int, mean_block: float = MEAN_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """The blocks that cover ``n_rows`` rows: uniform start rows in ``[0, n_source)`` and
    geometric lengths (mean ``mean_block``); the last block is cut to fit."""
    starts, lengths, total = [], [], 0
    while total < n_rows:
        starts.append(int(rng.integers(n_source)))
        length = int(rng.geometric(1.0 / mean_block))
        lengths.append(length)
        total += length
    lengths[-1] -= total - n_rows
    return np.array(starts), np.array(lengths)


def bootstrap_rows(
    rng: np.random.Generator, n_rows: int, n_source: int, mean_block: float = MEAN_BLOCK
) -> np.ndarray:
    """Source row indices of a stationary block bootstrap (blocks wrap around the end)."""
    starts, lengths = block_starts_lengths(rng, n_rows, n_source, mean_block)
    parts = [(s + np.arange(n)) % n_source for s, n in zip(starts, lengths, strict=True)]
    return np.concatenate(parts)


def closes_frame(w: Workload, returns: pd.DataFrame | None = None) -> pd.DataFrame:
    """The workload's closes: ``w.n_bars`` business days x ``w.n_tickers`` columns."""
    returns = bundled_returns() if returns is None else returns
    rng = np.random.default_rng(w.seed)
    source = returns.to_numpy()
    names = list(returns.columns)
    if w.n_tickers == len(names):
        cols = np.arange(len(names))
    else:
        cols = rng.integers(len(names), size=w.n_tickers)
    rows = bootstrap_rows(rng, w.n_bars - 1, len(source))
    r = source[rows][:, cols]
    prices = 100.0 * np.cumprod(np.vstack([np.zeros(len(cols)), r]) + 1.0, axis=0)
    seen: dict[str, int] = {}
    tickers = []
    for c in cols:
        base = names[c]
        seen[base] = seen.get(base, 0) + 1
        tickers.append(base if seen[base] == 1 else f"{base}.{seen[base]}")
    index = pd.bdate_range(START, periods=w.n_bars, name="date")
    return pd.DataFrame(prices, index=index, columns=tickers)


def lookbacks(n_strategies: int) -> list[int]:
    """Lookbacks spread evenly over 20..200 bars (10 strategies: 20, 40, ..., 200)."""
    if n_strategies == 1:
        return [20]
    return [int(round(x)) for x in np.linspace(20, 200, n_strategies)]


def config_dict(w: Workload) -> dict:
    allocation = 1.0 / w.n_strategies
    strategies = [
        {
            "name": f"mom_{i:03d}_lb{lb}",
            "allocation": allocation,
            "signal_type": "MomentumSignalV2",
            "parameters": {"lookback": lb, "sma_filter": None, "top_n": TOP_N},
            "status": "active",
        }
        for i, lb in enumerate(lookbacks(w.n_strategies))
    ]
    return {
        "portfolio": {
            "name": f"bench {w.n_strategies}x{w.n_tickers}x{w.n_bars}",
            "initial_capital": INITIAL_CAPITAL,
            "commission_bps": 0,
            "slippage_bps": 0,
            "whole_shares": False,
            "allocation_method": "static",
            "rebalancing": {
                "method": "periodic",
                "frequency": "monthly",
                "trading_day": 1,
                "execution": "cash",
            },
        },
        "strategies": strategies,
    }


def workload_write(
    w: Workload, out_dir: str | Path, returns: pd.DataFrame | None = None
) -> tuple[Path, Path, pd.DataFrame]:
    """Write ``prices.csv`` (wide: date and one column per ticker, 17 significant digits,
    so every float64 reads back bit for bit) and ``config.yaml`` to ``out_dir``; returns
    both paths and the closes. ``returns``: the source rows (default the bundled ones)."""
    import yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    closes = closes_frame(w, returns)
    data_path = out / "prices.csv"
    closes.to_csv(data_path, index_label="date", date_format="%Y-%m-%d", float_format="%.17g")
    config_path = out / "config.yaml"
    config_path.write_text(yaml.safe_dump(config_dict(w), sort_keys=False))
    return config_path, data_path, closes
