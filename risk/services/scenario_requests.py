"""One way in for every on-demand scenario (the /scenarios/ page, the API, the commands)
and the scheduled set after the daily update.

``scenario_request(portfolio=, kind=, params=, trigger=)`` checks ``params`` for its kind
(``ScenarioRequestError`` names the field and the rule, and nothing is stored), runs it
and stores the result as a ``ScenarioRun``. ``scenarios_scheduled`` runs every enabled
stress window (hold and run mode), every enabled shock, the Monte Carlo projection, the
correlation regime check and the walk-forward comparison for a live portfolio, once per
state version: a second call on the same state computes nothing.
"""

from __future__ import annotations

import logging
from datetime import date

from django.conf import settings

from portfolio.models import Portfolio, StateVersion
from risk.engine.scenario_specs import MODES, shock_problems, window_parse
from risk.engine.stress import Shock
from risk.models import ScenarioRun, ShockScenario, StressWindow
from risk.services import projections
from risk.services.scenarios import shock_from, shock_record, stress_record

log = logging.getLogger(__name__)


class ScenarioRequestError(ValueError):
    """A request refused before anything ran: ``field`` and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def _window(params: dict) -> tuple[str, date, date]:
    if params.get("window_id") not in (None, ""):
        w = StressWindow.objects.filter(pk=params["window_id"]).first()
        if w is None:
            raise ScenarioRequestError("window_id", f"no stress window {params['window_id']!r}")
        return w.name, w.start, w.end
    text = params.get("window")
    if not text:
        raise ScenarioRequestError("window", "give START:END (ISO dates) or a window_id")
    try:
        start, end = window_parse(text, field="window")
    except ValueError as exc:
        raise ScenarioRequestError("window", str(exc).removeprefix("window: ")) from None
    named = StressWindow.objects.filter(start=start, end=end).first()
    return (named.name if named else text), start, end


def _shock(params: dict) -> tuple[str, Shock]:
    if params.get("shock_id") not in (None, ""):
        row = ShockScenario.objects.filter(pk=params["shock_id"]).first()
        if row is None:
            raise ScenarioRequestError("shock_id", f"no shock {params['shock_id']!r}")
        return row.name, shock_from(row)
    market = params.get("market", 0.0)
    sectors, tickers = params.get("sectors") or {}, params.get("tickers") or {}
    problems = shock_problems(market=market, sectors=sectors, tickers=tickers)
    if problems:
        field, _, rule = problems[0].partition(": ")
        raise ScenarioRequestError(field, rule)
    name = params.get("name") or _shock_label(market, sectors, tickers)
    return name, Shock(market=float(market), sectors=dict(sectors), tickers=dict(tickers))


def _shock_label(market: float, sectors: dict, tickers: dict) -> str:
    parts = [f"{k} {v:+.0%}" for k, v in {**sectors, **tickers}.items()]
    parts.append(f"{'everything else' if parts else 'market'} {market:+.0%}")
    return ", ".join(parts)[:200]


def scenario_request(*, portfolio: Portfolio, kind: str, params: dict, trigger: str) -> ScenarioRun:
    """Check, run and store one scenario (module docstring)."""
    if portfolio.last_applied_date is None:
        raise ScenarioRequestError("portfolio", f"{portfolio.name} has no applied bar yet")
    if kind == ScenarioRun.Kind.STRESS:
        mode = params.get("mode") or "hold"
        if mode not in MODES:
            raise ScenarioRequestError("mode", f"must be one of {', '.join(MODES)}")
        name, start, end = _window(params)
        return stress_record(
            portfolio=portfolio, name=name, start=start, end=end, mode=mode, trigger=trigger
        )
    if kind == ScenarioRun.Kind.SHOCK:
        name, shock = _shock(params)
        return shock_record(portfolio=portfolio, name=name, shock=shock, trigger=trigger)
    if kind in projections.KINDS:
        try:
            return projections.KINDS[kind](portfolio=portfolio, params=params, trigger=trigger)
        except projections.ParamsError as exc:
            raise ScenarioRequestError(exc.field, exc.rule) from None
    kinds = ", ".join(ScenarioRun.Kind.values)
    raise ScenarioRequestError("kind", f"must be one of {kinds}, got {kind!r}")


def scenarios_scheduled(*, portfolio: Portfolio) -> int:
    """Every scheduled scenario of ``portfolio`` on its current state (module docstring);
    returns how many it stored (0 when this state version was already done)."""
    if portfolio.last_applied_date is None:
        return 0
    version = (
        StateVersion.objects.filter(portfolio=portfolio).values_list("version", flat=True).first()
        or 0
    )
    done = ScenarioRun.objects.filter(
        portfolio=portfolio, trigger=ScenarioRun.Trigger.SCHEDULE, state_version=version
    )
    if done.exists():
        return 0
    trigger = ScenarioRun.Trigger.SCHEDULE
    runs = []
    modes = settings.QUANTSITE_SCENARIO_MODES
    for w in StressWindow.objects.filter(enabled=True):
        for mode in modes:
            runs.append(
                stress_record(
                    portfolio=portfolio,
                    name=w.name,
                    start=w.start,
                    end=w.end,
                    mode=mode,
                    trigger=trigger,
                )
            )
    for row in ShockScenario.objects.filter(enabled=True):
        runs.append(
            shock_record(portfolio=portfolio, name=row.name, shock=shock_from(row), trigger=trigger)
        )
    for kind in projections.SCHEDULED:
        try:
            runs.append(projections.KINDS[kind](portfolio=portfolio, params={}, trigger=trigger))
        except projections.ParamsError as exc:  # e.g. no strategy to compare
            log.info("scheduled %s skipped: %s", kind, exc)
    return len(runs)
