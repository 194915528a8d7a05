"""The plain-data alert (``risk.engine.alert_formats.AlertMessage``) of a violation or of a
channel test: the one place ORM rows become what every transport formats."""

from __future__ import annotations

import math

from risk.engine import alert_formats as fmt
from risk.models import AlertChannel, Violation


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def violation_message(violation: Violation) -> fmt.AlertMessage:
    """The plain-data alert for a violation (its status as of now)."""
    return fmt.AlertMessage(
        portfolio=violation.portfolio.name,
        limit=violation.limit.name,
        severity=violation.severity,
        scope=violation.limit.scope,
        strategy=violation.strategy.name if violation.strategy_id else None,
        ticker=violation.instrument.ticker if violation.instrument_id else None,
        value=_finite(violation.value),
        threshold=_finite(violation.threshold),
        direction=violation.limit.direction,
        action=violation.action_taken,
        date=violation.date.isoformat(),
        status=violation.status,
        note=violation.message,
        violation_id=violation.pk,
    )


def channel_test_message(channel: AlertChannel) -> fmt.AlertMessage:
    name = channel.portfolio.name if channel.portfolio_id else "all portfolios"
    return fmt.AlertMessage(portfolio=name, note=f"Channel {channel.name} ({channel.kind}).")
