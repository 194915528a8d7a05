"""The severity scale of risk limits, violations and alert channels: defined here once.

Four levels, ``critical > high > medium > low``. ``SEVERITIES`` lists them most severe
first (the order of the model's choices, the YAML's error messages and the page filters);
``SEVERITY_RANK`` maps each to an integer that grows with severity (low 1 .. critical 4),
so "at least as severe as" is ``>=`` on ranks. Everything that compares severities (a
channel's ``min_severity`` floor, the order of the levels) goes through this module; the
mappings that only translate a severity (the harshest and default action of each, Discord
colours, PagerDuty's levels, the model's choices) are keyed by ``SEVERITIES`` and tested
to cover it exactly.
"""

from __future__ import annotations

SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_RANK = {name: len(SEVERITIES) - i for i, name in enumerate(SEVERITIES)}
LOWEST_SEVERITY = SEVERITIES[-1]


def severity_rank(severity: str) -> int:
    """``SEVERITY_RANK[severity]`` (low 1 .. critical 4); ValueError for a name off the
    scale, so a typo never compares as the lowest level."""
    try:
        return SEVERITY_RANK[severity]
    except KeyError:
        raise ValueError(
            f"unknown severity {severity!r}; must be one of {', '.join(SEVERITIES)}"
        ) from None


def severity_at_least(severity: str, floor: str) -> bool:
    """True when ``severity`` is as severe as ``floor`` or more (``critical`` passes a
    ``high`` floor, ``medium`` does not)."""
    return severity_rank(severity) >= severity_rank(floor)
