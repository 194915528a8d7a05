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
==============================================  ========  =========  =============  ========

(``position_limits`` may sit inside ``portfolio_limits``, as in the spec, or at top level.)
Thresholds are checked for sign and range: drawdowns in (-1, 0), leverage and volatility
> 0, weights in (0, 1], correlations in (-1, 1], ratio >= 1, position counts >= 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from portfolio.engine.checks import ConfigChecker

SEVERITIES = ("critical", "high", "medium", "low")
ACTIONS = ("liquidate_all", "reduce_positions", "pause_strategy", "alert_only")
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


# key -> (scope, metric, direction, severity, (lo, hi, lo_open, hi_open))
_DD = (-1.0, 0.0, True, True)
_POS = (0.0, math.inf, True, True)
_WEIGHT = (0.0, 1.0, True, False)
_CORR = (-1.0, 1.0, True, False)
_PORTFOLIO_KEYS = {
    "max_drawdown": ("portfolio", "drawdown", "min", "critical", _DD),
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
# Keys each channel's config may carry; their use: risk/alerts.py (senders) and README.
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
        },
    )
    pl = mapping(
        top.get("portfolio_limits"),
        "portfolio_limits",
        set(_PORTFOLIO_KEYS) | {"position_limits", "correlation_limits", "violation_actions"},
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
            {"position_limits", "correlation_limits", "violation_actions"}
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
    channels = _parse_alerts(top.get("alert_settings"), mapping, fail)
    return RiskConfigSpec(tuple(limits), channels)


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
        config["min_severity"] = severity
        channels.append(ChannelSpec(name=name, kind=kind, enabled=enabled, config=config))
    return tuple(channels)
