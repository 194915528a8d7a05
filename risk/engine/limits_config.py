"""Validation of ``risk_limits.yaml`` (already parsed) into limit and alert-channel specs.

The spec's example file loads unchanged. Each YAML limit becomes one ``LimitSpec``; its
severity follows the spec's violation hierarchy and its action is the file's
``violation_actions`` entry for that severity:

==============================================  ========  =========  =============  ========
YAML key                                        scope     metric     breaches when  severity
==============================================  ========  =========  =============  ========
portfolio_limits.max_drawdown                   portfolio drawdown   value < thr    critical
portfolio_limits.max_leverage                   portfolio leverage   value > thr    high
portfolio_limits.max_volatility                 portfolio volatility value > thr    high
portfolio_limits.min_diversification_ratio      portfolio div. ratio value < thr    low
position_limits.max_weight_per_ticker           position  net weight value > thr    low
position_limits.max_concentration_top5          portfolio top-5 wt   value > thr    low
correlation_limits.max_strategy_correlation     portfolio max corr   value > thr    medium
correlation_limits.alert_threshold              portfolio max corr   value > thr    low
strategy_limits.max_drawdown                    strategy  drawdown   value < thr    medium
strategy_limits.max_leverage                    strategy  leverage   value > thr    high
strategy_limits.max_volatility                  strategy  volatility value > thr    high
strategy_limits.max_positions                   strategy  positions  value > thr    low
portfolio_limits.max_var_95 (99, cvar_95, 99)   portfolio VaR/CVaR   value > thr    high
portfolio_limits.sector_limits                  sector    group wt   value > thr    high*
portfolio_limits.asset_class_limits             asset_cl. group wt   value > thr    high*
==============================================  ========  =========  =============  ========

Group (concentration) limits, e.g.::

    sector_limits:      {basis: net, default: 0.40, overrides: {"Information Technology": 0.30}}
    asset_class_limits: {basis: gross, default: 0.80, severity: low}

``basis`` is ``net`` (metric ``group_net_weight``, the default) or ``gross``
(``group_gross_weight``), formulas in ``risk.engine.groups``; ``default`` caps every
group (sector or asset class name) that has no override, ``overrides`` maps a group name
to its own cap; caps are in (0, 1]. ``*severity`` is the file's choice (default ``high``:
the spec names the ticker weight as its "low, position size" example, but a cap on a whole
sector that only alerted would be the same as the per-ticker one; a breach of it is a
portfolio-level concentration that ``reduce_positions`` corrects by cutting that group's
holdings), and the action is that severity's ``violation_actions`` entry. The default cap
becomes the limit ``sector_limits`` (group empty: every group without its own limit) and
each override ``sector_limits[<name>]``; each breaching group opens its own violation.

Measurement (optional top-level ``measurement``): ``window_bars``, the trailing bars of
strategy returns behind volatility, VaR/CVaR, diversification and correlation (default 60,
at least 2), the risk manager's own, independent of the allocation method's lookback.

Recovery (optional top-level ``recovery``): ``steps`` (exposure fractions on successive
bars after a violation resolves, ascending in (0, 1], ending at 1; default 0.25, 0.5, 1),
``cooldown_bars`` (bars a liquidation or a pause lasts at least; default 5) and per limit
``limits.<name>: {threshold, steps, cooldown_bars}``; a recovery threshold must be on the
safe side of the limit (a drawdown limit of -0.15 may recover at -0.05, not at -0.2). By
default drawdown limits recover at half their threshold, the others at the threshold.

A severity may take its own action or a milder one, never a harsher one. Actions, harshest
first: liquidate_all > reduce_positions > pause_strategy > reduce_position > alert_only;
the harshest each severity may take: critical liquidate_all, high reduce_positions,
medium pause_strategy, low reduce_position (the spec's "Low: position size breach ->
reduce specific position"). So ``violation_actions.low`` may be ``reduce_position`` or
``alert_only`` (the default, the spec's example), and a medium limit may also take
``reduce_position``. ``reduce_position`` cuts the breaching ticker only and caps it there
while the violation is open (``risk.engine.position_caps``); it is a position-scope action:
a portfolio- or strategy-scope limit given it (diversification ratio, top-5 concentration,
correlation alert, strategy position count at low) has no one position to cut and alerts
only (documented fallback).

Per-position stop-losses are not limits of this file: each strategy sets its own in
``strategy_allocation.yaml`` (``risk_config.stop_loss``, ``portfolio.engine.sizing``) and
``risk.engine.stops`` applies them; their violations refer to one disabled limit named
``position stop-loss`` (``risk.services.session.stop_limit_get``), never a name of this file.

(``position_limits`` may sit inside ``portfolio_limits``, as in the spec, or at top level.)
Thresholds are checked for sign and range: drawdowns in (-1, 0), leverage and volatility
> 0, weights in (0, 1], correlations in (-1, 1], ratio >= 1, position counts >= 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from portfolio.engine.checks import ConfigChecker

from risk.engine.channel_rules import channel_config_problem
from risk.engine.severity import SEVERITIES

ACTIONS = ("liquidate_all", "reduce_positions", "pause_strategy", "reduce_position", "alert_only")
ACTION_RANK = {
    "alert_only": 1,
    "reduce_position": 2,
    "pause_strategy": 3,
    "reduce_positions": 4,
    "liquidate_all": 5,
}
# the harshest action each severity may take (a milder one is always allowed)
HARSHEST_ACTION = {
    "critical": "liquidate_all",
    "high": "reduce_positions",
    "medium": "pause_strategy",
    "low": "reduce_position",
}
DEFAULT_STEPS = (0.25, 0.5, 1.0)
DEFAULT_CRITICAL_COOLDOWN = 5
DEFAULT_WINDOW_BARS = 60  # the risk measures' trailing window of strategy returns
# portfolio_limits section -> scope; basis -> metric (group limits, module docstring)
GROUP_SECTIONS = {"sector_limits": "sector", "asset_class_limits": "asset_class"}
GROUP_METRICS = {"net": "group_net_weight", "gross": "group_gross_weight"}
GROUP_SEVERITY = "high"
GROUP_NAME_MAX = 80  # a limit's name, ``<section>[<group>]``, fits RiskLimit.name (100)
DEFAULT_ACTIONS = {
    "critical": "liquidate_all",
    "high": "reduce_positions",
    "medium": "pause_strategy",
    "low": "alert_only",
}


@dataclass(frozen=True)
class LimitSpec:
    name: str
    scope: str
    metric: str
    direction: str
    threshold: float
    severity: str
    action: str
    source: str
    recovery_threshold: float | None = None
    recovery_steps: tuple[float, ...] = DEFAULT_STEPS
    cooldown_bars: int = 0
    group: str | None = None  # only this sector / asset class (group scopes; None: the rest)


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    kind: str
    enabled: bool
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RiskConfigSpec:
    limits: tuple[LimitSpec, ...]
    channels: tuple[ChannelSpec, ...]
    window_bars: int = DEFAULT_WINDOW_BARS


# key -> (scope, metric, direction, severity, (lo, hi, lo_open, hi_open))
_DD = (-1.0, 0.0, True, True)
_POS = (0.0, math.inf, True, True)
_WEIGHT = (0.0, 1.0, True, False)
_CORR = (-1.0, 1.0, True, False)
_FRACTION = (0.0, 1.0, True, True)
_PORTFOLIO_KEYS = {
    "max_drawdown": ("portfolio", "drawdown", "min", "critical", _DD),
    "max_var_95": ("portfolio", "var_95", "max", "high", _FRACTION),
    "max_var_99": ("portfolio", "var_99", "max", "high", _FRACTION),
    "max_cvar_95": ("portfolio", "cvar_95", "max", "high", _FRACTION),
    "max_cvar_99": ("portfolio", "cvar_99", "max", "high", _FRACTION),
    "max_leverage": ("portfolio", "leverage", "max", "high", _POS),
    "max_volatility": ("portfolio", "volatility", "max", "high", _POS),
    "min_diversification_ratio": (
        "portfolio",
        "diversification_ratio",
        "min",
        "low",
        (1.0, math.inf, False, True),
    ),
}
_POSITION_KEYS = {
    "max_weight_per_ticker": ("position", "ticker_weight", "max", "low", _WEIGHT),
    "max_concentration_top5": ("portfolio", "top5_concentration", "max", "low", _WEIGHT),
}
_CORRELATION_KEYS = {
    "max_strategy_correlation": ("portfolio", "strategy_correlation", "max", "medium", _CORR),
    "alert_threshold": ("portfolio", "strategy_correlation", "max", "low", _CORR),
}
_STRATEGY_KEYS = {
    "max_drawdown": ("strategy", "drawdown", "min", "medium", _DD),
    "max_leverage": ("strategy", "leverage", "max", "high", _POS),
    "max_volatility": ("strategy", "volatility", "max", "high", _POS),
    "max_positions": ("strategy", "positions_count", "max", "low", (1.0, math.inf, False, True)),
}
# Keys each channel's config may carry; their use: risk/alerts/transports/ (senders) and README.
_ALERT_KINDS = {
    "email": (
        "email",
        {"enabled", "recipients", "smtp_server", "from_email", "timeout", "min_severity"},
    ),
    "slack": ("slack", {"enabled", "webhook_url", "timeout", "min_severity"}),
    "discord": ("discord", {"enabled", "webhook_url", "timeout", "min_severity"}),
    "webhook": ("webhook", {"enabled", "url", "headers", "timeout", "min_severity"}),
    "sms": (
        "sms",
        {
            "enabled",
            "provider",
            "twilio_sid",
            "twilio_token",
            "phone_number",
            "from_number",
            "api_base",
            "timeout",
            "min_severity",
        },
    ),
    "pagerduty": ("pagerduty", {"enabled", "routing_key", "api_base", "timeout", "min_severity"}),
}


def parse_risk_config(data: Any, *, source: str) -> RiskConfigSpec:
    """Validate a parsed risk_limits.yaml; return the specs or raise ConfigError."""

    checker = ConfigChecker(source)
    fail, mapping = checker.fail, checker.mapping

    top = mapping(
        data,
        "",
        {
            "portfolio_limits",
            "position_limits",
            "correlation_limits",
            "strategy_limits",
            "violation_actions",
            "alert_settings",
            "recovery",
            "measurement",
        },
    )
    pl = mapping(
        top.get("portfolio_limits"),
        "portfolio_limits",
        set(_PORTFOLIO_KEYS)
        | {"position_limits", "correlation_limits", "violation_actions"}
        | set(GROUP_SECTIONS),
    )
    actions_raw = mapping(
        pl.get("violation_actions") or top.get("violation_actions"),
        "portfolio_limits.violation_actions",
        set(SEVERITIES),
    )
    actions = dict(DEFAULT_ACTIONS)
    for sev, act in actions_raw.items():
        if act not in ACTIONS:
            raise fail(
                f"portfolio_limits.violation_actions.{sev}",
                f"unknown action {act!r}; allowed: {', '.join(ACTIONS)}",
            )
        mismatch = action_mismatch(sev, act)
        if mismatch:
            raise fail(f"portfolio_limits.violation_actions.{sev}", mismatch)
        actions[sev] = act

    limits: list[LimitSpec] = []
    sections = [
        ("portfolio_limits", pl, _PORTFOLIO_KEYS, ""),
        ("portfolio_limits.position_limits", pl.get("position_limits"), _POSITION_KEYS, ""),
        ("position_limits", top.get("position_limits"), _POSITION_KEYS, ""),
        (
            "portfolio_limits.correlation_limits",
            pl.get("correlation_limits"),
            _CORRELATION_KEYS,
            "",
        ),
        ("correlation_limits", top.get("correlation_limits"), _CORRELATION_KEYS, ""),
        ("strategy_limits", top.get("strategy_limits"), _STRATEGY_KEYS, "strategy_"),
    ]
    for path, section, keys, prefix in sections:
        extra = (
            {"position_limits", "correlation_limits", "violation_actions", *GROUP_SECTIONS}
            if path == "portfolio_limits"
            else set()
        )
        section = mapping(section, path, set(keys) | extra)
        for key, (scope, metric, direction, severity, bounds) in keys.items():
            if key not in section:
                continue
            value = _threshold(section[key], f"{path}.{key}", bounds, fail)
            name = prefix + ("correlation_alert" if key == "alert_threshold" else key)
            if any(existing.name == name for existing in limits):
                raise fail(f"{path}.{key}", f"limit {name!r} is given twice")
            limits.append(
                LimitSpec(
                    name,
                    scope,
                    metric,
                    direction,
                    value,
                    severity,
                    actions[severity],
                    f"{source}: {path}.{key}",
                )
            )
    for key in GROUP_SECTIONS:
        limits.extend(_parse_group_limits(checker, pl.get(key), key, actions, source))
    limits = _parse_recovery(checker, top.get("recovery"), limits)
    channels = _parse_alerts(top.get("alert_settings"), mapping, fail)
    measurement = mapping(top.get("measurement"), "measurement", {"window_bars"})
    window = checker.integer(
        measurement, "window_bars", "measurement", default=DEFAULT_WINDOW_BARS, minimum=2
    )
    return RiskConfigSpec(tuple(limits), channels, window)


def action_mismatch(severity: str, action: str) -> str | None:
    """Why ``action`` is too harsh for ``severity`` (None when it is allowed)."""
    ceiling = ACTION_RANK[HARSHEST_ACTION[severity]]
    if ACTION_RANK[action] <= ceiling:
        return None
    allowed = [a for a, r in ACTION_RANK.items() if r <= ceiling]
    return (
        f"a {severity}-severity breach cannot take action {action}; allowed: "
        f"{', '.join(sorted(allowed, key=ACTION_RANK.get, reverse=True))}"
    )


METRICS = {
    scope: {
        metric: (direction, bounds)
        for keys in (_PORTFOLIO_KEYS, _POSITION_KEYS, _CORRELATION_KEYS, _STRATEGY_KEYS)
        for (sc, metric, direction, _sev, bounds) in keys.values()
        if sc == scope
    }
    for scope in ("portfolio", "strategy", "position")
} | {
    scope: {metric: ("max", _WEIGHT) for metric in GROUP_METRICS.values()}
    for scope in GROUP_SECTIONS.values()
}


def _parse_group_limits(
    checker: ConfigChecker, raw: Any, key: str, actions: dict[str, str], source: str
) -> list[LimitSpec]:
    """``portfolio_limits.sector_limits`` / ``asset_class_limits`` (module docstring): one
    LimitSpec for the default cap (``group`` None: every group without its own cap) and
    one per override, named ``<key>[<group name>]``."""
    path = f"portfolio_limits.{key}"
    conf = checker.mapping(raw, path, {"basis", "default", "overrides", "severity"})
    if not conf:
        return []
    basis = checker.choice(conf, "basis", path, tuple(GROUP_METRICS), default="net")
    severity = checker.choice(conf, "severity", path, SEVERITIES, default=GROUP_SEVERITY)
    overrides = conf.get("overrides")
    if overrides is not None and not isinstance(overrides, dict):
        raise checker.fail(
            f"{path}.overrides",
            f"must be a mapping of group name to cap, got {type(overrides).__name__}",
        )
    caps: list[tuple[str | None, float]] = []
    if "default" in conf:
        caps.append((None, _threshold(conf["default"], f"{path}.default", _WEIGHT, checker.fail)))
    for name, cap in (overrides or {}).items():
        where = f"{path}.overrides.{name}"
        if not isinstance(name, str) or not name.strip() or len(name) > GROUP_NAME_MAX:
            raise checker.fail(
                where, f"a group name must be a non-empty string of at most {GROUP_NAME_MAX} chars"
            )
        caps.append((name, _threshold(cap, where, _WEIGHT, checker.fail)))
    if not caps:
        raise checker.fail(path, "needs a default cap or overrides (or leave the section out)")
    scope, metric = GROUP_SECTIONS[key], GROUP_METRICS[basis]
    return [
        LimitSpec(
            key if group is None else f"{key}[{group}]",
            scope,
            metric,
            "max",
            cap,
            severity,
            actions[severity],
            f"{source}: {path}." + ("default" if group is None else f"overrides.{group}"),
            group=group,
        )
        for group, cap in caps
    ]


def limit_check(
    *, scope: str, metric: str, direction: str, threshold: float, severity: str, action: str
) -> dict[str, str]:
    """Field -> rule for a limit edited by hand (the admin): the same rules as the YAML."""
    errors = {}
    known = METRICS.get(scope, {})
    if metric not in known:
        errors["metric"] = f"unknown metric for scope {scope}; known: {', '.join(sorted(known))}"
        return errors
    want, bounds = known[metric]
    if direction != want:
        errors["direction"] = f"{metric} limits are '{want}' limits"
    try:
        _threshold(threshold, "threshold", bounds, lambda _p, rule: ValueError(rule))
    except ValueError as exc:
        errors["threshold"] = str(exc)
    mismatch = action_mismatch(severity, action)
    if mismatch:
        errors["action"] = mismatch
    return errors


def _parse_recovery(checker: ConfigChecker, raw: Any, limits: list[LimitSpec]) -> list[LimitSpec]:
    conf = checker.mapping(raw, "recovery", {"steps", "cooldown_bars", "limits"})
    steps = _steps(checker, conf, "recovery") if "steps" in conf else DEFAULT_STEPS
    cooldown = checker.integer(
        conf, "cooldown_bars", "recovery", default=DEFAULT_CRITICAL_COOLDOWN, minimum=0
    )
    names = {limit.name for limit in limits}
    per = checker.mapping(conf.get("limits"), "recovery.limits", names)
    out = []
    for limit in limits:
        path = f"recovery.limits.{limit.name}"
        own = checker.mapping(per.get(limit.name), path, {"threshold", "steps", "cooldown_bars"})
        threshold = None
        if "threshold" in own:
            threshold = checker.number(own, "threshold", path)
            safe = (
                threshold >= limit.threshold
                if limit.direction == "min"
                else (threshold <= limit.threshold)
            )
            if not safe:
                raise checker.fail(
                    f"{path}.threshold",
                    f"must be on the safe side of the limit's {limit.threshold:g} "
                    f"({'>=' if limit.direction == 'min' else '<='} it), got {threshold:g}",
                )
        base = cooldown if limit.action in ("liquidate_all", "pause_strategy") else 0
        out.append(
            replace(
                limit,
                recovery_threshold=threshold,
                recovery_steps=_steps(checker, own, path) if "steps" in own else steps,
                cooldown_bars=checker.integer(own, "cooldown_bars", path, default=base, minimum=0),
            )
        )
    return out


def _steps(checker: ConfigChecker, d: dict, path: str) -> tuple[float, ...]:
    raw = d.get("steps")
    ok = (
        isinstance(raw, list)
        and raw
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in raw)
    )
    if not ok or any(not 0 < x <= 1 for x in raw) or list(raw) != sorted(raw) or raw[-1] != 1:
        raise checker.fail(
            f"{path}.steps", f"must be ascending fractions in (0, 1] ending at 1, got {raw!r}"
        )
    return tuple(float(x) for x in raw)


def _threshold(value: Any, path: str, bounds, fail) -> float:
    lo, hi, lo_open, hi_open = bounds
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(path, f"must be a number, got {value!r}")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    above = v >= hi if hi_open else v > hi
    if not math.isfinite(v) or below or above:
        lo_s = "(" if lo_open else "["
        hi_s = ")" if hi_open else "]"
        hint = " (drawdowns are negative fractions, e.g. -0.15)" if hi == 0.0 else ""
        raise fail(path, f"must be in {lo_s}{lo:g}, {hi:g}{hi_s}, got {v:g}{hint}")
    return v


def _parse_alerts(raw: Any, mapping, fail) -> tuple[ChannelSpec, ...]:
    settings = mapping(raw, "alert_settings", set(_ALERT_KINDS))
    channels = []
    for name, (kind, allowed) in _ALERT_KINDS.items():
        if name not in settings:
            continue
        path = f"alert_settings.{name}"
        conf = mapping(settings[name], path, allowed)
        enabled = conf.get("enabled", True)
        if not isinstance(enabled, bool):
            raise fail(f"{path}.enabled", f"must be true or false, got {enabled!r}")
        severity = conf.get("min_severity", "low")
        if severity not in SEVERITIES:
            raise fail(f"{path}.min_severity", f"must be one of {', '.join(SEVERITIES)}")
        if kind == "email":
            recipients = conf.get("recipients", [])
            if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
                raise fail(f"{path}.recipients", "must be a list of email addresses")
        config = {k: v for k, v in conf.items() if k not in ("enabled", "min_severity")}
        if problem := channel_config_problem(kind, config, enabled=enabled):
            raise fail(f"{path}.{problem[0]}", problem[1])
        config["min_severity"] = severity
        channels.append(ChannelSpec(name=name, kind=kind, enabled=enabled, config=config))
    return tuple(channels)
