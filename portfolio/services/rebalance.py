"""Operator rebalance requests (admin action, API, config page all call this one service).

A request does not trade at once: the capital moves at the close of the first bar after
the last bar the portfolio had applied when the request was made (the daily cycle's step
2, ``portfolio.engine.rebalance``), so it never trades at a price its maker had already
seen. Requests waiting together make one rebalance; resubmitting a request with the same
``request_key`` (a double click, a retried POST) returns the stored request and changes
nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from portfolio.engine.errors import ConfigError
from portfolio.engine.state import EXECUTIONS
from portfolio.models import Portfolio, RebalanceRequest

KEY_MAX = 100


@dataclass(frozen=True)
class RequestResult:
    request: RebalanceRequest
    created: bool  # False: the same key was submitted before; nothing new happened


def rebalance_request(
    *,
    portfolio: Portfolio,
    request_key: str | None = None,
    method: str = "",
    requested_by: str = "",
    source: str = "api",
) -> RequestResult:
    """Record a manual rebalance request for the next bar (idempotent per request_key)."""
    key = (request_key or "").strip() or f"{source}-{uuid.uuid4()}"
    if len(key) > KEY_MAX:
        raise ConfigError("request_key", f"must be at most {KEY_MAX} characters")
    if method and method not in EXECUTIONS:
        raise ConfigError("method", f"must be one of {', '.join(EXECUTIONS)}, got {method!r}")
    existing = RebalanceRequest.objects.filter(request_key=key).first()
    if existing is not None:
        return _same_request(existing, portfolio)
    try:
        with transaction.atomic():
            portfolio = Portfolio.objects.select_for_update().get(pk=portfolio.pk)
            created = RebalanceRequest.objects.create(
                portfolio=portfolio,
                request_key=key,
                method=method,
                requested_by=requested_by,
                source=source,
                after_date=portfolio.last_applied_date,
            )
    except IntegrityError:  # the same key, submitted concurrently: the other one won
        return _same_request(RebalanceRequest.objects.get(request_key=key), portfolio)
    return RequestResult(created, True)


def _same_request(existing: RebalanceRequest, portfolio: Portfolio) -> RequestResult:
    if existing.portfolio_id != portfolio.pk:
        raise ConfigError("request_key", "is already used by a request for another portfolio")
    return RequestResult(existing, False)
