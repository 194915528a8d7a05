"""Pure performance analytics for the reporting pages (numpy, pandas, scipy; no Django).

performance: headline statistics, drawdowns, calendar returns, closed-trade statistics.
rolling: rolling Sharpe, volatility, beta and pairwise correlations.
attribution: strategy contributions (daily, cumulative, per period) and Brinson-Fachler.
downsample: ``decimate``, extreme-preserving downsampling for charts.
risk: trailing covariance and correlation, risk contributions, diversification ratio.
trades: round trips (FIFO) from fills, with their hold times.
checks: boundary validation shared by the modules above.
"""
