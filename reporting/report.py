"""Plotly figures for the static report and the notebook: pandas in, figure dicts out.

Pure functions (no Django, no I/O). Every figure is a plain ``{"data": [...], "layout":
{...}}`` dict that Plotly.js draws as it is and ``plotly.graph_objects.Figure(fig)``
accepts. Inputs are indexed by date (``datetime.date`` or ``Timestamp``); x values are
written as ISO dates. Every line is downsampled with ``reporting.engine.downsample.decimate``
to at most ``MAX_POINTS`` points, keeping each bucket's first, last, minimum and maximum, so
a 33-year daily history stays light without losing its troughs and spikes.
"""

from __future__ import annotations

import math

import numpy as np
import orjson
import pandas as pd

from reporting.engine.downsample import decimate

MAX_POINTS = 2000
DOWNSAMPLE_NOTE = (
    f"Each line is downsampled to at most {MAX_POINTS:,} points "
    "(every bucket keeps its first, last, lowest and highest value)."
)
BENCHMARK_NAME = "S&P 500 (rebased)"
_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "hovermode": "x unified",
    "legend": {"orientation": "h", "y": -0.15},
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "xaxis": {"gridcolor": "#eaecf0"},
    "yaxis": {"gridcolor": "#eaecf0"},
}
# Red below zero, white at zero, green above (Plotly.js knows only a few scales by name).
RED_WHITE_GREEN = [[0.0, "#b42318"], [0.5, "#ffffff"], [1.0, "#067647"]]


def _iso(index) -> list[str]:
    return [pd.Timestamp(d).date().isoformat() for d in index]


def _line(series: pd.Series, name: str, **style) -> dict:
    """A scatter line of ``series`` (NaN dropped), decimated to ``MAX_POINTS``."""
    s = series.dropna().astype(float)
    if len(s) > MAX_POINTS:
        s = decimate(s, MAX_POINTS)
    trace = {"type": "scatter", "mode": "lines", "name": name}
    return trace | {"x": _iso(s.index), "y": s.to_numpy()} | style


def _layout(title: str, **extra) -> dict:
    """The shared layout with ``title``; axis dicts in ``extra`` are merged, not replaced."""
    layout = _LAYOUT | {"title": {"text": title}}
    for key, value in extra.items():
        base = layout.get(key)
        layout[key] = base | value if isinstance(base, dict) and isinstance(value, dict) else value
    return layout


def equity_figure(
    portfolio: pd.Series, strategies: pd.DataFrame, benchmark: pd.Series | None = None
) -> dict:
    """Portfolio equity (thick), each strategy's equity (thin, one column each) and the
    benchmark's close rebased to the portfolio's first equity (dotted):
    benchmark_t x portfolio_0 / benchmark_0, from the first date both exist."""
    data = [_line(portfolio, "Portfolio", line={"width": 3})]
    data += [_line(strategies[c], str(c), line={"width": 1}) for c in strategies.columns]
    if benchmark is not None:
        both = pd.concat([portfolio, benchmark], axis=1).dropna()
        if len(both):
            first = both.iloc[0]
            rebased = benchmark.loc[both.index[0] :] * (first.iloc[0] / first.iloc[1])
            data.append(_line(rebased, BENCHMARK_NAME, line={"width": 1.5, "dash": "dot"}))
    layout = _layout("Equity (log scale)", yaxis={"title": {"text": "equity"}, "type": "log"})
    return {"data": data, "layout": layout}


def drawdown_figure(drawdown: pd.Series) -> dict:
    """Drawdown from the running peak (a negative fraction), filled to zero."""
    line = _line(
        drawdown,
        "Drawdown",
        fill="tozeroy",
        fillcolor="rgba(180, 35, 24, 0.25)",
        line={"width": 1, "color": "#b42318"},
    )
    layout = _layout("Drawdown", yaxis={"tickformat": ".0%"}, showlegend=False)
    return {"data": [line], "layout": layout}


def monthly_returns_figure(table: pd.DataFrame) -> dict:
    """Heatmap of ``performance.monthly_returns_table`` (years x "Jan".."Dec"; the "Year"
    column is left to the table): red below zero, green above, symmetric around zero."""
    months = [c for c in table.columns if c != "Year"]
    z = np.ascontiguousarray(table[months].to_numpy(dtype=float))
    finite = np.abs(z[np.isfinite(z)])
    bound = float(finite.max()) if finite.size else 0.01
    text = [["" if not math.isfinite(v) else f"{v:.1%}" for v in row] for row in z]
    heat = {
        "type": "heatmap",
        "name": "Monthly return",
        "z": z,
        "x": months,
        "y": [str(y) for y in table.index],
        "text": text,
        "texttemplate": "%{text}",
        "hovertemplate": "%{y} %{x}: %{text}<extra></extra>",
        "colorscale": RED_WHITE_GREEN,
        "zmid": 0.0,
        "zmin": -bound,
        "zmax": bound,
        "colorbar": {"tickformat": ".0%"},
    }
    layout = _layout(
        "Monthly returns",
        yaxis={"autorange": "reversed", "type": "category"},
        hovermode="closest",
        height=max(320, 22 * len(table) + 140),
    )
    return {"data": [heat], "layout": layout}


def rolling_figure(sharpe: pd.Series, volatility: pd.Series, window: int) -> dict:
    """Rolling Sharpe ratio (top panel) and annualized volatility (bottom panel) over a
    trailing ``window`` of days, on one shared date axis."""
    vol = _line(volatility, f"Volatility ({window}d)", yaxis="y2", line={"width": 1})
    data = [_line(sharpe, f"Sharpe ({window}d)", line={"width": 1}), vol]
    layout = _layout(
        f"Rolling {window}-day Sharpe ratio and volatility",
        yaxis={"title": {"text": "Sharpe"}, "domain": [0.55, 1.0]},
        yaxis2={
            "title": {"text": "volatility"},
            "domain": [0.0, 0.45],
            "anchor": "x",
            "tickformat": ".0%",
            "gridcolor": "#eaecf0",
        },
        height=520,
    )
    return {"data": data, "layout": layout}


def growth_figure(returns: pd.DataFrame) -> dict:
    """Growth of 1 per strategy from its daily returns (flows excluded):
    prod(1 + r) up to each date, one line per column."""
    growth = (1.0 + returns.fillna(0.0)).cumprod()
    data = [_line(growth[c], str(c), line={"width": 1.5}) for c in growth.columns]
    layout = _layout("Strategy growth of 1, flows excluded (log scale)", yaxis={"type": "log"})
    return {"data": data, "layout": layout}


def weights_figure(weights: pd.DataFrame) -> dict:
    """Each strategy's share of portfolio equity, stacked (sums to 1 each day). The frame is
    decimated as a whole, so every layer keeps the same dates and the stack stays exact."""
    frame = weights.astype(float)
    cap = 2 + 2 * frame.shape[1]
    if len(frame) > MAX_POINTS and MAX_POINTS >= cap:
        frame = decimate(frame, MAX_POINTS)
    data = [
        _line(frame[c].fillna(0.0), str(c), stackgroup="weights", line={"width": 0.5})
        for c in frame.columns
    ]
    layout = _layout("Share of portfolio equity", yaxis={"tickformat": ".0%", "range": [0, 1]})
    return {"data": data, "layout": layout}


VAR_COLUMNS = {"var_95": "VaR 95%", "var_99": "VaR 99%", "cvar_95": "CVaR 95%"}
VAR_COLUMNS |= {"cvar_99": "CVaR 99%"}


def var_figure(risk: pd.DataFrame) -> dict | None:
    """One-day VaR and CVaR history (positive loss fractions of equity) from the risk
    table, indexed by date; None when the risk manager has computed none of them."""
    present = [c for c in VAR_COLUMNS if c in risk.columns and risk[c].notna().any()]
    if not present:
        return None
    data = [_line(risk[c], VAR_COLUMNS[c], line={"width": 1}) for c in present]
    return {"data": data, "layout": _layout("Value at risk (1 day)", yaxis={"tickformat": ".1%"})}


def _tolist(value):
    """orjson's fallback: arrays it does not take natively (not C-contiguous, object)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def figure_json(figure: dict) -> str:
    """``figure`` as JSON that is safe inside an HTML ``<script>`` element: orjson (numpy
    arrays serialized, NaN as null) with every ``<``, ``>`` and ``&`` written as a \\u
    escape, so no ``</script>`` in a name can end the element; ``json.loads`` gives the
    same figure back."""
    text = orjson.dumps(figure, default=_tolist, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
