"""Page 5, configuration: allocations, method, limits, alert channels, rebalancing rules,
recent rebalances and requests, the audit trail; staff also get the operator controls
(``reporting.control_views``)."""

from __future__ import annotations

from portfolio.engine.signals import SIGNALS
from portfolio.models import Portfolio
from reporting import selectors
from reporting.pages.common import in_force_allocation

RECENT = 20


def config_page(*, portfolio: Portfolio) -> dict:
    """Context of the configuration page (a fixed 7 queries)."""
    strategies = selectors.strategy_list(portfolio=portfolio)
    rebalances = selectors.rebalance_event_list(portfolio=portfolio, limit=RECENT)
    notes = rebalances[0].notes if rebalances else {}
    leverage = float(portfolio.leverage_target)
    return {
        "signal_types": sorted(SIGNALS),
        "retire_allocations": {
            s.name: _without(strategies, s, leverage) for s in strategies if not s.retired_at
        },
        "portfolio": portfolio,
        "allocations": [
            {
                "strategy": s,
                "static": float(s.target_allocation),
                "in_force": in_force_allocation(s),
                "why": notes.get(s.name, ""),
            }
            for s in strategies
        ],
        "static_total": sum(float(s.target_allocation) for s in strategies),
        "limits": selectors.risk_limit_list(portfolio=portfolio),
        "channels": selectors.alert_channel_list(portfolio=portfolio),
        "rebalances": rebalances,
        "requests": selectors.rebalance_request_list(portfolio=portfolio, limit=RECENT),
        "changes": selectors.config_change_list(portfolio=portfolio, limit=RECENT),
        "open_violations": [
            v
            for v in selectors.violation_list(portfolio=portfolio, limit=RECENT)
            if v.acknowledged_at is None
        ],
    }


def _without(strategies, gone, leverage: float) -> dict[str, float]:
    """The others' targets rescaled to fill the retired one's share (the retire form's
    proposal; the operator may change it)."""
    others = {s.name: float(s.target_allocation) for s in strategies if s.pk != gone.pk}
    total = sum(others.values())
    if total <= 0:
        return others
    return {n: round(a * leverage / total, 6) for n, a in others.items()}
