"""Risk reads: violations (filtered lists and counts, the changes a review may link),
limits, alert channels, the drawdown limit's reference, and what the risk manager
measured at the last close (its record and its return window).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from django.db.models import Q, QuerySet

from portfolio.models import Portfolio, PortfolioSnapshot, Strategy
from risk import selectors as risk_selectors
from risk.models import AlertChannel, RiskLimit, Violation


def violation_list(
    *,
    portfolio: Portfolio,
    limit: int,
    severity: str | None = None,
    strategy_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    reviewed: bool | None = None,
    with_reviews: bool = False,
    offset: int = 0,
) -> list[Violation]:
    """Violations, newest first, filtered, rows ``offset`` to ``offset + limit`` (1 query);
    ``with_reviews``: the changes their reviews linked prefetched too (1 more when any
    match)."""
    qs = _violation_queryset(
        portfolio=portfolio,
        severity=severity,
        strategy_name=strategy_name,
        date_from=date_from,
        date_to=date_to,
        reviewed=reviewed,
    )
    qs = qs.select_related("limit", "strategy", "instrument")
    if with_reviews:
        qs = qs.prefetch_related("review_changes")
    return list(qs.order_by("-date", "-id")[offset : offset + limit])


def violation_count(
    *,
    portfolio: Portfolio,
    severity: str | None = None,
    strategy_name: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    reviewed: bool | None = None,
) -> int:
    """How many violations ``violation_list`` pages through with these filters (1 query)."""
    return _violation_queryset(
        portfolio=portfolio,
        severity=severity,
        strategy_name=strategy_name,
        date_from=date_from,
        date_to=date_to,
        reviewed=reviewed,
    ).count()


def _violation_queryset(
    *, portfolio, severity, strategy_name, date_from, date_to, reviewed
) -> QuerySet[Violation]:
    qs = Violation.objects.filter(portfolio=portfolio)
    if reviewed is not None:
        qs = qs.filter(acknowledged_at__isnull=not reviewed)
    if severity:
        qs = qs.filter(severity=severity)
    if strategy_name:
        qs = qs.filter(strategy__name=strategy_name)
    if date_from:
        qs = qs.filter(date__gte=date_from)
    if date_to:
        qs = qs.filter(date__lte=date_to)
    return qs


REVIEW_CANDIDATES_READ = 1000  # the newest; a page lists a few per violation


def review_candidate_list(*, violations: list[Violation], per_violation: int) -> dict:
    """Violation id -> the configuration changes a review of it may link (its portfolio's,
    made at or after it opened, by an operator: ``risk.selectors.
    violation_review_candidates``), oldest first, at most ``per_violation`` each, out of
    the newest ``REVIEW_CANDIDATES_READ`` (1 query; none without violations)."""
    if not violations:
        return {}
    since = min(v.opened_at for v in violations)
    newest = risk_selectors.violation_review_candidates(
        portfolio_id=violations[0].portfolio_id, since=since
    ).order_by("-at", "-id")[:REVIEW_CANDIDATES_READ]
    changes = list(reversed(newest))
    return {v.pk: [c for c in changes if c.at >= v.opened_at][:per_violation] for v in violations}


def risk_limit_list(*, portfolio: Portfolio) -> list[RiskLimit]:
    """Every limit of the portfolio, enabled or not (1 query)."""
    return list(
        RiskLimit.objects.filter(portfolio=portfolio)
        .select_related("strategy", "instrument")
        .order_by("scope", "name")
    )


def alert_channel_list(*, portfolio: Portfolio) -> list[AlertChannel]:
    """The portfolio's alert channels and the global ones (1 query)."""
    return list(
        AlertChannel.objects.filter(Q(portfolio=portfolio) | Q(portfolio__isnull=True)).order_by(
            "name"
        )
    )


def drawdown_reference(*, portfolio: Portfolio) -> dict:
    """What the portfolio drawdown limit measures at the last close, beside the all-time
    drawdown of the equity curve (2 queries): ``limit`` (equity over the peak since the risk
    manager last liquidated, minus 1; None before it measured), ``all_time`` (equity over
    the running peak since inception, minus 1), and ``reset_on`` / ``reset_by``: the bar of
    the latest liquidation, which moved the limit's reference peak to the equity after it,
    and the limit that caused it (None: the peak is the all-time one)."""
    last = portfolio.snapshots.order_by("-date").values("drawdown", "risk").first()
    if last is None:
        return {}
    liquidation = (
        Violation.objects.filter(portfolio=portfolio, action_taken="liquidate_all")
        .order_by("-date", "-id")
        .values("date", "limit__name")
        .first()
    )
    return {
        "limit": (last["risk"] or {}).get("limit_drawdown"),
        "all_time": last["drawdown"],
        "reset_on": liquidation["date"] if liquidation else None,
        "reset_by": liquidation["limit__name"] if liquidation else None,
    }


# --- risk page (issue 14): what the risk manager measured at the last close ---


def risk_measurement_get(*, portfolio: Portfolio, as_of: date) -> dict:
    """The risk manager's record of the close ``as_of`` (1 query): ``detail`` the
    snapshot's ``risk`` JSON (correlation matrix, risk contributions, marginal
    contributions and weights, ``risk.services.session``), ``diversification_ratio`` and
    ``window_bars``, the trailing return window it measured on (``RiskBook``; the
    default 60 when the portfolio has no risk book yet)."""
    from risk.engine.limits_config import DEFAULT_WINDOW_BARS

    row = (
        PortfolioSnapshot.objects.filter(portfolio=portfolio, date=as_of)
        .values_list("risk", "diversification_ratio", "portfolio__risk_book__window_bars")
        .first()
    )
    detail, ratio, bars = row if row is not None else ({}, None, None)
    return {
        "detail": detail or {},
        "diversification_ratio": ratio,
        "window_bars": bars or DEFAULT_WINDOW_BARS,
    }


def risk_window_frame(
    *, portfolio: Portfolio, strategies: list[Strategy], bars: int
) -> pd.DataFrame:
    """The unit returns the risk manager measured the last close on (2 queries): the
    ``bars`` applied dates before it (funding day excluded), dates x strategy names, the
    rows ``portfolio.selectors.unit_returns_tail`` rebuilds the manager's window from (at
    close t the window ends at t-1: t's return enters at the next close)."""
    from portfolio.selectors import unit_returns_tail

    dates, rows = unit_returns_tail(
        portfolio=portfolio, strategy_ids=[s.id for s in strategies], bars=bars + 1
    )
    names = [s.name for s in strategies]
    frame = pd.DataFrame(rows, index=pd.DatetimeIndex(dates), columns=names, dtype=float)
    return frame.iloc[:-1].iloc[-bars:] if len(frame) else frame
