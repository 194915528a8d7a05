"""Context of the /scenarios/ page and of the Risk page's stress panel: the newest stored
result of every stress window (both modes), shock, Monte Carlo projection, correlation
regime check and walk-forward comparison (``risk.selectors.scenarios_latest``, two
queries), each marked stale when it was computed on an older state than the page shows."""

from __future__ import annotations

from portfolio.models import Portfolio
from portfolio.services.live import state_version_of
from reporting.charts import scenarios as scenario_charts
from risk.engine.scenario_specs import MODES
from risk.models import ScenarioRun, ShockScenario, StressWindow
from risk.selectors import scenarios_latest

KIND = ScenarioRun.Kind


MAX_TARGETS = 6  # targets named per limit in a row; the rest counted


def limits_grouped(fired: list[dict]) -> list[dict]:
    """The limits that fired, one entry per limit (first bar, severity, the targets it
    fired on in order of first firing, how many firings), in order of first firing."""
    groups: dict[str, dict] = {}
    for f in fired:
        g = groups.setdefault(
            f["name"],
            {
                "name": f["name"],
                "severity": f["severity"],
                "first_date": f["first_date"],
                "first_value": f.get("first_value"),
                "targets": [],
                "count": 0,
                "message": f.get("message", ""),
            },
        )
        g["count"] += 1
        g["first_date"] = min(g["first_date"], f["first_date"])
        if f["target"] and f["target"] not in g["targets"]:
            g["targets"].append(f["target"])
    out = sorted(groups.values(), key=lambda g: (g["first_date"], g["name"]))
    for g in out:
        g["more"] = max(0, len(g["targets"]) - MAX_TARGETS)
        g["targets"] = g["targets"][:MAX_TARGETS]
    return out


def _stale(run: ScenarioRun, version: int) -> bool:
    return run.state_version != version


def _stress_rows(latest: dict, windows: list[StressWindow], version: int) -> list[dict]:
    """One row per stored window and mode (then the ad-hoc windows run from the page)."""
    names = [w.name for w in windows]
    extra = sorted({n for (k, n, _m) in latest if k == KIND.STRESS and n not in names})
    rows = []
    for name in [*names, *extra]:
        for mode in MODES:
            run = latest.get((KIND.STRESS, name, mode))
            if run is None:
                continue
            r = run.result
            rows.append(
                {
                    "name": name,
                    "mode": mode,
                    "run": run,
                    "stale": _stale(run, version),
                    "window": r["window"],
                    "pnl": r["portfolio"]["final_pnl"],
                    "worst_pnl": r["portfolio"]["worst_pnl"],
                    "worst_drawdown": r["portfolio"]["worst_drawdown"],
                    "limits": limits_grouped(r["limits_fired"]),
                    "uncovered": r.get("uncovered", []),
                    "strategies": {s: v["final_pnl"] for s, v in r["strategies"].items()},
                    "pnl_path": r["portfolio"]["pnl"],
                }
            )
    return rows


def _shock_rows(latest: dict, version: int) -> list[dict]:
    rows = []
    for (kind, name, _mode), run in sorted(latest.items(), key=lambda kv: kv[0][1]):
        if kind != KIND.SHOCK:
            continue
        r = run.result
        rows.append(
            {
                "name": name,
                "run": run,
                "stale": _stale(run, version),
                "pnl": r["portfolio"]["pnl"],
                "return": r["portfolio"]["return"],
                "strategies": {s: v["pnl"] for s, v in r["strategies"].items()},
                "limits": limits_grouped(r["limits_fired"]),
            }
        )
    return rows


def stress_panel(*, portfolio: Portfolio) -> dict:
    """What the Risk page's stress panel shows: the hold-mode windows and the shocks."""
    version = state_version_of(portfolio)
    latest = scenarios_latest(portfolio=portfolio, kinds=(KIND.STRESS, KIND.SHOCK))
    windows = list(StressWindow.objects.all())
    rows = _stress_rows(latest, windows, version)
    return {"stress_rows": rows, "shock_rows": _shock_rows(latest, version)}


def scenarios_page(*, portfolio: Portfolio) -> dict:
    """Context of /scenarios/ (module docstring)."""
    version = state_version_of(portfolio)
    latest = scenarios_latest(portfolio=portfolio)
    windows = list(StressWindow.objects.all())
    shocks = list(ShockScenario.objects.all())
    stress = _stress_rows(latest, windows, version)
    shock = _shock_rows(latest, version)
    figures = {
        "stress_hold": scenario_charts.stress_paths_figure(
            {r["name"]: r["pnl_path"] for r in stress if r["mode"] == "hold"},
            "Hold mode: portfolio P&L",
        ),
        "stress_run": scenario_charts.stress_paths_figure(
            {r["name"]: r["pnl_path"] for r in stress if r["mode"] == "run"},
            "Run mode: portfolio P&L",
        ),
        "stress_strategies": scenario_charts.stress_strategies_figure(
            {f"{r['name']} ({r['mode']})": r["strategies"] for r in stress},
            "P&L per strategy at each window's end",
        ),
        "shock_strategies": scenario_charts.stress_strategies_figure(
            {r["name"]: r["strategies"] for r in shock}, "Instant P&L per strategy"
        ),
    }
    context = {
        "portfolio": portfolio,
        "as_of": portfolio.last_applied_date,
        "windows": windows,
        "shocks": shocks,
        "stress_rows": stress,
        "shock_rows": shock,
        "strategies": list(portfolio.strategies.order_by("position_order", "id")),
        "figures": figures,
    }
    context.update(_projections(latest, version, figures))
    return context


def _projections(latest: dict, version: int, figures: dict) -> dict:
    """The Monte Carlo, regime and walk-forward sections (newest run of each)."""
    out = {}
    for kind in (KIND.MONTECARLO, KIND.REGIME, KIND.WALKFORWARD):
        runs = [run for (k, _n, _m), run in latest.items() if k == kind]
        run = max(runs, key=lambda r: (r.created_at, r.pk), default=None)
        out[kind] = {"run": run, "stale": run is not None and _stale(run, version)}
        if run is not None:
            figures.update(_projection_figures(kind, run.result))
    return out


def _projection_figures(kind: str, r: dict) -> dict:
    if kind == KIND.MONTECARLO:
        limit = r.get("drawdown_limit")
        return {
            "mc_fan": scenario_charts.fan_figure(
                r.get("fan", {}), r.get("value0", 0.0), "Portfolio value: Monte Carlo fan"
            ),
            "mc_terminal": scenario_charts.histogram_counts_figure(
                *r.get("terminal_hist", ([], [])), "Terminal value", ",.0f"
            ),
            "mc_drawdown": scenario_charts.histogram_counts_figure(
                *r.get("max_drawdown_hist", ([], [])), "Max drawdown", ".0%", marker=limit
            ),
        }
    if kind == KIND.REGIME:
        threshold = r.get("threshold")
        hist = r.get("history") or {}
        dates = hist.get("dates", [])
        return {
            "regime": scenario_charts.series_figure(
                {
                    "average pairwise correlation": dict(
                        zip(dates, hist.get("average", []), strict=True)
                    )
                },
                "Rolling average correlation between strategies",
                yformat=".2f",
                hlines={"threshold": threshold} if threshold is not None else None,
            ),
            "regime_stat": scenario_charts.series_figure(
                {"p-value": dict(zip(dates, hist.get("p_value", []), strict=True))},
                "Change test p-value (Jennrich)",
                yformat=".3f",
            ),
        }
    figure = scenario_charts.series_figure(
        r.get("equity", {}),
        "Growth of 1: each variant and the walk-forward (log scale)",
        yformat=".3g",
    )
    if figure is not None:
        figure["layout"]["yaxis"]["type"] = "log"
    return {"walkforward": figure}
