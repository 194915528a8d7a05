"""django-q2 tasks (thin edges: each calls one service)."""

from __future__ import annotations

from risk.alerts import alerts_deliver


def deliver_alerts() -> str:
    report = alerts_deliver()
    return f"alerts: {report.sent} sent, {report.failed} failed of {report.attempted}"
