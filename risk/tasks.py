"""django-q2 tasks (thin edges: each calls one service)."""

from __future__ import annotations

from risk.alerts import alerts_deliver


def deliver_alerts() -> str:
    report = alerts_deliver()
    return f"alerts: {report.sent} sent, {report.failed} failed of {report.attempted}"


def run_scenarios() -> str:
    """The scheduled scenarios of every live portfolio, on its current state
    (``risk.services.scenario_requests.scenarios_scheduled``); enqueued after each
    update that applied bars (``operations.tasks``)."""
    from portfolio.selectors import live_portfolios
    from risk.services.scenario_requests import scenarios_scheduled

    stored = {p.name: scenarios_scheduled(portfolio=p) for p in live_portfolios()}
    return "scenarios: " + (", ".join(f"{n} {k}" for n, k in stored.items()) or "no portfolio")
