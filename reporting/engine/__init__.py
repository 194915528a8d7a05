"""Pure performance analytics for the reporting pages (numpy, pandas, scipy; no Django).

The single-series metrics (volatility, Sharpe, Sortino, drawdowns, win rate, profit
factor) are defined once in ``risk.engine.metrics`` and imported by the modules here.

performance: headline statistics, drawdowns, calendar returns, closed-trade statistics.
rolling: rolling Sharpe, volatility, beta and pairwise correlations.
attribution: strategy contributions (daily, cumulative, per period) and Brinson-Fachler.
downsample: ``decimate``, extreme-preserving downsampling for charts.
trades: round trips (FIFO) from fills, with their hold times.
checks: boundary validation shared by the modules above.
"""
