"""The configuration page's operator controls: small staff-only POST forms (CSRF), each a
thin edge over one service, answering with a message (what changed, or the field and the
rule that refused it) and a redirect back to the page. The services validate with the
engine's validators and record the audit rows; a refused value changes nothing."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from portfolio.engine.errors import ConfigError
from portfolio.models import Portfolio, Strategy
from portfolio.services.controls import (
    Origin,
    portfolio_rebalancing_set,
    strategy_add,
    strategy_allocations_set,
    strategy_pause,
    strategy_retire,
    strategy_update,
)
from portfolio.services.rebalance import rebalance_request
from reporting.pages.params import is_id
from risk import alerts
from risk.models import AlertChannel, RiskLimit, Violation
from risk.services import (
    alert_channel_update,
    risk_limit_update,
    strategy_resume,
    violation_acknowledge,
    violation_review,
)


def _origin(request: HttpRequest) -> Origin:
    return Origin.of_request(request, source="page")


MAX_JSON_CHARS = 20_000  # a strategy's parameters or risk config is a few hundred


def _json(request: HttpRequest, key: str) -> dict:
    raw = request.POST.get(key, "").strip() or "{}"
    if len(raw) > MAX_JSON_CHARS:
        raise ConfigError(key, f"is longer than {MAX_JSON_CHARS:,} characters")
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(key, f"is not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ConfigError(key, "is nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(key, "must be a JSON object")
    return value


def _no_constant(name: str):
    # json.loads takes NaN and Infinity, which are not JSON and no parameter can use
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _number(request: HttpRequest, key: str) -> float:
    raw = request.POST.get(key, "").strip()
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(key, f"must be a number, got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ConfigError(key, f"must be a finite number, got {raw[:40]!r}")
    return value


def _pk(request: HttpRequest, key: str) -> int:
    """An id from the form; a missing or malformed one is refused by name (the ORM would
    raise a ValueError, a 500)."""
    raw = request.POST.get(key, "").strip()
    if not is_id(raw):
        raise ConfigError(key, f"must be an id (a whole number), got {raw[:40]!r}")
    return int(raw)


def _strategy(portfolio: Portfolio, request: HttpRequest) -> Strategy:
    return get_object_or_404(Strategy, portfolio=portfolio, pk=_pk(request, "strategy"))


def _pause(request, portfolio) -> str:
    s = _strategy(portfolio, request)
    done = strategy_pause(strategy=s, origin=_origin(request))
    return f"{s.name} paused: no orders from the next bar" if done else f"{s.name} was paused"


def _resume(request, portfolio) -> str:
    s = _strategy(portfolio, request)
    o = _origin(request)
    done = strategy_resume(strategy=s, actor=o.actor, source=o.source, ip=o.ip)
    return f"{s.name} resumes at the next bar" if done else f"{s.name} was active"


def _allocations(request, portfolio) -> str:
    prefix = "allocation_"
    values = {
        k.removeprefix(prefix): _number(request, k) for k in request.POST if k.startswith(prefix)
    }
    changed = strategy_allocations_set(
        portfolio=portfolio, allocations=values, origin=_origin(request)
    )
    return f"target allocations changed: {', '.join(changed) or 'none'}"


def _strategy_config(request, portfolio) -> str:
    s = _strategy(portfolio, request)
    values = {
        "parameters": _json(request, "parameters"),
        "risk_config": _json(request, "risk_config"),
    }
    changed = strategy_update(strategy=s, values=values, origin=_origin(request))
    return f"{s.name}: {', '.join(changed) or 'nothing'} changed (from the next bar)"


def _approval(request, portfolio) -> str:
    s = _strategy(portfolio, request)
    required = request.POST.get("required", "") == "1"
    changed = strategy_update(
        strategy=s, values={"approval_required": required}, origin=_origin(request)
    )
    if not changed:
        return f"{s.name}: trade approval was already {'on' if required else 'off'}"
    if required:
        return f"{s.name}: signal orders wait for an approval from the next bar's decision"
    return f"{s.name}: trade approval off; a held decision fills at the next bar"


def _add(request, portfolio) -> str:
    s = strategy_add(
        portfolio=portfolio,
        name=request.POST.get("name", "").strip(),
        signal_type=request.POST.get("signal_type", ""),
        parameters=_json(request, "parameters"),
        risk_config=_json(request, "risk_config"),
        origin=_origin(request),
    )
    return f"{s.name} added: trades from the next bar once an allocation and a rebalance fund it"


def _retire(request, portfolio) -> str:
    s = _strategy(portfolio, request)
    prefix = "allocation_"
    others = {
        k.removeprefix(prefix): _number(request, k) for k in request.POST if k.startswith(prefix)
    }
    strategy_retire(strategy=s, allocations=others, origin=_origin(request))
    return f"{s.name} retired (history kept); allocations: {others}"


def _limit(request, portfolio) -> str:
    limit = get_object_or_404(RiskLimit, portfolio=portfolio, pk=_pk(request, "limit"))
    values = {"threshold": _number(request, "threshold"), "enabled": "enabled" in request.POST}
    changed = risk_limit_update(limit=limit, values=values, origin=_origin(request))
    return f"limit {limit.name}: {', '.join(changed) or 'nothing'} changed"


def _rebalancing(request, portfolio) -> str:
    rule = {k: request.POST[k] for k in ("method", "frequency", "execution") if k in request.POST}
    if "threshold" in request.POST:
        rule["threshold"] = _number(request, "threshold")
    if "trading_day" in request.POST:
        raw = request.POST["trading_day"].strip()
        digits = raw.removeprefix("-")
        rule["trading_day"] = int(raw) if digits.isascii() and digits.isdigit() else raw
    changed = portfolio_rebalancing_set(portfolio=portfolio, rule=rule, origin=_origin(request))
    return f"rebalancing rule: {', '.join(changed) or 'nothing'} changed"


def _channel(request, portfolio) -> str:
    channel = _channel_get(request, portfolio)
    values = {"enabled": "enabled" in request.POST}
    if "min_severity" in request.POST:
        values["min_severity"] = request.POST["min_severity"]
    changed = alert_channel_update(channel=channel, values=values, origin=_origin(request))
    return f"channel {channel.name}: {', '.join(changed) or 'nothing'} changed"


def _channel_get(request, portfolio) -> AlertChannel:
    channel = get_object_or_404(AlertChannel, pk=_pk(request, "channel"))
    if channel.portfolio_id not in (None, portfolio.pk):
        raise PermissionDenied
    return channel


def _rebalance(request, portfolio) -> str:
    result = rebalance_request(portfolio=portfolio, origin=_origin(request))
    return f"rebalance request {result.request.request_key} applies at the next bar"


def _acknowledge(request, portfolio) -> str:
    v = get_object_or_404(Violation, portfolio=portfolio, pk=_pk(request, "violation"))
    done = violation_acknowledge(
        violation=v, note=request.POST.get("note", ""), origin=_origin(request)
    )
    return f"violation {v.pk} acknowledged" if done else f"violation {v.pk} was acknowledged"


def _review(request, portfolio) -> str:
    """The risk page's review form: a note and the checked configuration changes."""
    v = get_object_or_404(Violation, portfolio=portfolio, pk=_pk(request, "violation"))
    first = violation_review(
        violation=v,
        note=request.POST.get("note", ""),
        change_ids=request.POST.getlist("change"),
        origin=_origin(request),
    )
    n = v.review_changes.count()
    linked = f"{n} change{'' if n == 1 else 's'} linked"
    return f"violation {v.pk} {'reviewed' if first else 'review amended'}: {linked}"


def _test_alert(request, portfolio) -> str:
    channel = _channel_get(request, portfolio)
    alerts.alert_channel_test(channel=channel)
    return f"test alert queued on {channel.name}"


CONTROLS: dict[str, Callable[[HttpRequest, Portfolio], str]] = {
    "pause": _pause,
    "resume": _resume,
    "allocations": _allocations,
    "add": _add,
    "retire": _retire,
    "strategy": _strategy_config,
    "approval": _approval,
    "limit": _limit,
    "rebalancing": _rebalancing,
    "channel": _channel,
    "rebalance": _rebalance,
    "acknowledge": _acknowledge,
    "review": _review,
    "test-alert": _test_alert,
}


@require_POST
@login_required
def config_control(request: HttpRequest, pk: int, control: str):
    """POST /config/<portfolio id>/<control>/ (staff; others 403): run one control,
    message, redirect back to the page (the risk page's violation log when the form
    posts ``next=risk``, as its review form does)."""
    if not request.user.is_staff:
        raise PermissionDenied
    action = CONTROLS.get(control)
    if action is None:
        raise PermissionDenied  # not a control: nothing to do
    portfolio = get_object_or_404(Portfolio, pk=pk)
    try:
        messages.success(request, action(request, portfolio))
    except ConfigError as exc:
        messages.error(request, f"Refused, nothing changed: {exc.where}: {exc.rule}")
    if request.POST.get("next") == "risk":
        return redirect(f"/risk/?portfolio={portfolio.pk}#violations")
    return redirect(f"/config/?portfolio={portfolio.pk}")
