"""The committed state version the live pages follow (``StateVersion``).

``state_version_bump`` runs inside the transaction that commits what the pages show, so
the version and the rows become visible together; a rolled-back commit leaves no trace.
Callers that change what the pages show outside the update path (operator controls) may
call it too: the open pages then refetch."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from portfolio.models import Portfolio, StateVersion


def state_version_bump(*, portfolio: Portfolio, as_of: date | None) -> int:
    """Add one to the portfolio's version (2 queries) and return the new value. Must run
    in the caller's transaction; the first bump creates the row."""
    fields = {"version": F("version") + 1, "committed_at": timezone.now()}
    if as_of is not None:
        fields["as_of"] = as_of
    if not StateVersion.objects.filter(portfolio=portfolio).update(**fields):
        try:
            with transaction.atomic():  # savepoint: a concurrent first bump may win
                StateVersion.objects.create(portfolio=portfolio, version=1, as_of=as_of)
                return 1
        except IntegrityError:
            StateVersion.objects.filter(portfolio=portfolio).update(**fields)
    return StateVersion.objects.values_list("version", flat=True).get(portfolio=portfolio)


def state_version_of(portfolio: Portfolio) -> int:
    """The version of a portfolio loaded with ``select_related("state_version")`` (no
    query then); 0 before its first commit."""
    try:
        return portfolio.state_version.version
    except StateVersion.DoesNotExist:
        return 0
