"""The overview's "Recent activity": what happened to the shown portfolio, bar by bar.

Every item is dated by the bar at which it happened or took effect, never by the wall
clock: fills (summed per bar, strategy and reason), rebalances (manual ones with who
asked), violations opened and resolved, and strategy status changes (the risk manager's
at the bar it acted on, an operator's at the first bar after the change, with the
wall-clock time beside). Each says its cause. A fixed 4 queries (one per source), newest
bar first, at most ``ACTIVITY_ITEMS`` items.
"""

from __future__ import annotations

from datetime import date, datetime

from portfolio.models import ConfigChange, Portfolio, RebalanceEvent, Trade
from reporting import selectors
from risk.models import Violation

ACTIVITY_ITEMS = 20

# Within one bar, the order a quant reads the close in: the breach, what the risk manager
# or an operator switched, the capital moved, the fills that followed, what recovered.
_ORDER = {"violation": 0, "status": 1, "rebalance": 2, "trades": 3, "resolved": 4}


def activity_items(
    *, portfolio: Portfolio, rebalances: list[RebalanceEvent] | None = None
) -> list[dict]:
    """The ``ACTIVITY_ITEMS`` newest items: dicts with ``date`` (bar date; None for a
    status change no bar has applied yet: it takes effect at the next bar, listed first),
    ``kind``, ``text``, ``cause``, ``at`` (wall-clock time of an operator's change, else
    None), ``good`` (True/False colours the text) and ``strategy`` (name or "").
    ``rebalances``: the rows of ``selectors.activity_rebalance_list`` if the caller has
    already read them (the overview does, for its last rebalance)."""
    n = ACTIVITY_ITEMS
    if rebalances is None:
        rebalances = selectors.activity_rebalance_list(portfolio=portfolio, limit=n)
    items = [_trade_item(g) for g in selectors.activity_trade_groups(portfolio=portfolio, limit=n)]
    items += [_rebalance_item(e) for e in rebalances]
    for v in selectors.activity_violation_list(portfolio=portfolio, limit=n):
        items += _violation_items(v)
    items += [
        _status_item(c) for c in selectors.activity_status_change_list(portfolio=portfolio, limit=n)
    ]
    items.sort(key=_newest_first)
    return items[:n]


def _newest_first(item: dict) -> tuple:
    day = item["date"]
    # pending (None) before every bar; then newest bar first; then the reading order
    return (day is not None, -(day.toordinal() if day else 0), _ORDER[item["kind_key"]])


def _item(day: date | None, key: str, kind: str, text: str, cause: str, **extra) -> dict:
    return {
        "date": day,
        "kind_key": key,
        "kind": kind,
        "text": text,
        "cause": cause,
        "at": extra.get("at"),
        "good": extra.get("good"),
        "strategy": extra.get("strategy", ""),
    }


def _trade_item(g: dict) -> dict:
    parts = []
    if g["buys"]:
        parts.append(f"{g['buys']} buy{'s' * (g['buys'] > 1)} {g['bought']:,.0f}")
    if g["sells"]:
        parts.append(f"{g['sells']} sell{'s' * (g['sells'] > 1)} {g['sold']:,.0f}")
    realized = g["realized"] or 0.0
    text = f"{g['strategy_name']}: {', '.join(parts)}; cost {g['cost_sum'] or 0.0:,.2f}"
    if realized:
        text += f"; realized {realized:+,.2f}"
    reason = Trade.Reason(g["reason"]).label.lower()
    return _item(
        g["date"],
        "trades",
        f"{g['fills']} fill{'s' * (g['fills'] > 1)}",
        text,
        reason,
        good=None if not realized else realized > 0,
        strategy=g["strategy_name"],
    )


def _rebalance_item(e: RebalanceEvent) -> dict:
    moved = float(e.capital_moved)
    text = f"{e.get_trigger_display()}: {moved:,.0f} moved, {e.trades_count} trades"
    if e.trigger == RebalanceEvent.Trigger.MANUAL:
        who = e.requested_by or "unknown user"
        more = f" and {e.request_count - 1} more" if e.request_count > 1 else ""
        cause = f"requested by {who}{more} ({e.request_source or 'unknown surface'})"
    elif e.trigger == RebalanceEvent.Trigger.RISK_BREACH:
        cause = "risk manager"
    elif e.trigger == RebalanceEvent.Trigger.RETIRE:
        cause = "an operator retired " + ", ".join(sorted(e.notes)) if e.notes else "retirement"
    else:
        cause = f"{e.get_trigger_display().lower()} rule"
    return _item(e.date, "rebalance", "rebalance", text, cause)


def _violation_items(v: Violation) -> list[dict]:
    who = v.strategy.name if v.strategy else (v.instrument or "portfolio")
    name = v.strategy.name if v.strategy else ""
    opened = _item(
        v.date,
        "violation",
        f"violation ({v.severity})",
        f"{v.limit.name} {who}: {v.value:.4g} vs {v.threshold:.4g}, "
        f"{v.get_action_taken_display().lower()}",
        "risk manager",
        good=False,
        strategy=name,
    )
    if v.resolved_on is None:
        return [opened]
    resolved = _item(
        v.resolved_on,
        "resolved",
        "resolved",
        f"{v.limit.name} {who} (breached {v.date:%Y-%m-%d})",
        "risk manager: recovery condition met",
        good=True,
        strategy=name,
    )
    return [opened, resolved]


def _status_item(c: ConfigChange) -> dict:
    by_risk = c.source == "risk"
    cause = "risk manager" if by_risk else f"{c.actor or 'unknown user'} ({c.source})"
    text = f"{c.object_repr}: {c.before} -> {c.after}"
    if c.effective is None:
        text += " (takes effect at the next bar)"
    at = None if by_risk else c.at
    if isinstance(at, datetime):
        at = at.replace(microsecond=0)
    return _item(c.effective, "status", "status", text, cause, at=at, strategy=c.object_repr)
