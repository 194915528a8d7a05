"""Operator rebalance requests (admin action, API, config page all call this one service).

A request does not trade at once: the capital moves at the close of the first bar after
the last bar the portfolio had applied when the request was made (the daily cycle's step
2, ``portfolio.engine.rebalance``), so it never trades at a price its maker had already
seen. Requests waiting together make one rebalance; resubmitting a request with the same
``request_key`` (a double click, a retried POST) returns the stored request and changes
nothing. A new request is also one row of the audit trail (``ConfigChange`` field
``rebalance_request`` of the portfolio: who, where, the client's IP, after = the request),
written through the operator controls' helper, so it also moves the live pages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from portfolio.engine.errors import ConfigError
from portfolio.engine.state import EXECUTIONS
from portfolio.models import Portfolio, RebalanceRequest
from portfolio.services.controls import Origin, config_change_record

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
    origin: Origin | None = None,
) -> RequestResult:
    """Record a manual rebalance request for the next bar (idempotent per request_key) by
    ``origin`` (an anonymous API call when None) and its audit row."""
    origin = origin or Origin(actor="", source="api")
    key = (request_key or "").strip() or f"{origin.source}-{uuid.uuid4()}"
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
                requested_by=origin.actor[:150],
                source=origin.source,
                after_date=portfolio.last_applied_date,
            )
            config_change_record(
                obj=portfolio,
                portfolio=portfolio,
                field="rebalance_request",
                before=None,
                after={
                    "request_key": key,
                    "method": method or "portfolio's",
                    "after_date": _plain_date(portfolio.last_applied_date),
                },
                origin=origin,
            )
    except IntegrityError:  # the same key, submitted concurrently: the other one won
        return _same_request(RebalanceRequest.objects.get(request_key=key), portfolio)
    return RequestResult(created, True)


def _plain_date(day) -> str | None:
    return day.isoformat() if day is not None else None


def _same_request(existing: RebalanceRequest, portfolio: Portfolio) -> RequestResult:
    if existing.portfolio_id != portfolio.pk:
        raise ConfigError("request_key", "is already used by a request for another portfolio")
    return RequestResult(existing, False)
