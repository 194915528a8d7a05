"""The /scenarios/ page and its forms (thin edges): run a scenario on demand (any
logged-in user: it computes and stores a result, it never trades), and edit the stress
windows and shocks (staff, audited). Each form's values are parsed here, the rules live in
``risk.engine.scenario_specs`` and the services; a refused value comes back as one message
naming the field, and nothing is stored."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from portfolio.services.controls import Origin
from reporting import selectors
from reporting.pages.scenarios import scenarios_page
from reporting.views import SESSION_KEY, _render
from risk.engine.scenario_specs import moves_parse, percent_parse
from risk.models import ScenarioRun, ShockScenario, StressWindow
from risk.services.scenario_config import (
    ScenarioConfigError,
    scenario_config_delete,
    shock_save,
    stress_window_save,
)
from risk.services.scenario_requests import ScenarioRequestError, scenario_request

PAGE = "reporting:scenarios"


@login_required
def scenarios(request):
    return _render(request, "scenarios", scenarios_page)


def _back(anchor: str):
    response = redirect(PAGE)
    response["Location"] += f"#{anchor}"
    return response


def _ints(post, *names: str) -> dict:
    out = {}
    for name in names:
        raw = (post.get(name) or "").strip()
        if raw:
            try:
                out[name] = int(raw)
            except ValueError:
                raise ScenarioRequestError(name, f"{raw!r} is not a whole number") from None
    return out


def _params(kind: str, post) -> dict:
    """The form's fields as ``scenario_request`` params (ValueError names a field)."""
    if kind == ScenarioRun.Kind.STRESS:
        params = {"mode": post.get("mode") or "hold"}
        if post.get("window_id"):
            return params | {"window_id": post["window_id"]}
        return params | {"window": f"{post.get('start', '')}:{post.get('end', '')}"}
    if kind == ScenarioRun.Kind.SHOCK:
        if post.get("shock_id"):
            return {"shock_id": post["shock_id"]}
        return {
            "market": percent_parse(post.get("market") or "0", field="market"),
            "sectors": moves_parse(post.get("sectors", ""), field="sectors"),
            "tickers": moves_parse(post.get("tickers", ""), field="tickers"),
        }
    if kind == ScenarioRun.Kind.MONTECARLO:
        return _ints(post, "paths", "horizon", "seed", "block")
    if kind == ScenarioRun.Kind.REGIME:
        return _ints(post, "window")
    if kind == ScenarioRun.Kind.WALKFORWARD:
        params = _ints(post, "in_sample", "out_of_sample")
        params["strategy"] = post.get("strategy", "")
        params["lookbacks"] = post.get("lookbacks", "")
        return params
    return {}


@login_required
@require_POST
def scenario_run(request):
    """Run one scenario from the page's forms; back to its section with the outcome."""
    kind = request.POST.get("kind", "")
    portfolio = selectors.portfolio_shown_get(pk=request.session.get(SESSION_KEY))
    if portfolio is None:
        messages.error(request, "There is no portfolio to run a scenario on.")
        return _back(kind)
    try:
        run = scenario_request(
            portfolio=portfolio, kind=kind, params=_params(kind, request.POST), trigger="page"
        )
    except (ScenarioRequestError, ValueError) as exc:
        messages.error(request, f"Not run: {exc}")
        return _back(kind)
    if run.status == ScenarioRun.Status.FAILED:
        messages.error(request, f"{run.get_kind_display()} {run.name}: {run.error}")
    else:
        messages.success(
            request, f"{run.get_kind_display()} {run.name}: done in {run.seconds:.1f} s."
        )
    return _back(kind)


def _date(post, field: str) -> date:
    try:
        return date.fromisoformat((post.get(field) or "").strip())
    except ValueError:
        raise ScenarioConfigError(field, "must be a date (YYYY-MM-DD)") from None


def _edit(request, obj, *, anchor: str, label: str, save):
    """Delete ``obj`` (the form's ``delete``) or ``save(origin)`` it; back to ``anchor``
    with the outcome, or the refused field and rule (nothing written)."""
    origin = Origin.of_request(request, source="page")
    try:
        if obj is not None and request.POST.get("delete"):
            scenario_config_delete(obj=obj, origin=origin)
            messages.success(request, f"Deleted the {label} {obj.name}.")
            return _back(anchor)
        saved = save(origin)
    except (ScenarioConfigError, ValueError) as exc:
        messages.error(request, f"Not saved: {exc}")
        return _back(anchor)
    messages.success(request, f"Saved the {label} {saved.name}.")
    return _back(anchor)


@staff_member_required
@require_POST
def scenario_window(request, pk: int | None = None):
    """Add (no ``pk``), change or delete (``delete``) a stress window."""
    window = get_object_or_404(StressWindow, pk=pk) if pk else None
    post = request.POST
    return _edit(
        request,
        window,
        anchor="windows",
        label="stress window",
        save=lambda origin: stress_window_save(
            window=window,
            name=post.get("name", ""),
            start=_date(post, "start"),
            end=_date(post, "end"),
            description=post.get("description", ""),
            enabled=bool(post.get("enabled")),
            origin=origin,
        ),
    )


@staff_member_required
@require_POST
def scenario_shock(request, pk: int | None = None):
    """Add (no ``pk``), change or delete (``delete``) a hypothetical shock."""
    shock = get_object_or_404(ShockScenario, pk=pk) if pk else None
    post = request.POST
    return _edit(
        request,
        shock,
        anchor="shocks",
        label="shock",
        save=lambda origin: shock_save(
            shock=shock,
            name=post.get("name", ""),
            market=percent_parse(post.get("market") or "0", field="market"),
            sectors=moves_parse(post.get("sectors", ""), field="sectors"),
            tickers=moves_parse(post.get("tickers", ""), field="tickers"),
            enabled=bool(post.get("enabled")),
            origin=origin,
        ),
    )
