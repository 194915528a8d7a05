"""The committed state version the live pages follow (``StateVersion``).

``state_version_bump`` runs inside the transaction that commits what the pages show, so
the version and the rows become visible together; a rolled-back commit leaves no trace.
Operator changes (every audit row of ``portfolio.services.controls``) call
``state_touch`` instead: the version moves, the bar date stays, and the open pages refetch
at once rather than at the next bar."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from portfolio.models import Portfolio, StateVersion
from portfolio.notify import notify_update


def _bump(portfolio: Portfolio, as_of: date | None, first_as_of: date | None):
    """Add one to the version (setting ``as_of`` unless None; a first row gets
    ``first_as_of``) and return ``(version, as_of)`` as stored."""
    fields = {"version": F("version") + 1, "committed_at": timezone.now()}
    if as_of is not None:
        fields["as_of"] = as_of
    if not StateVersion.objects.filter(portfolio=portfolio).update(**fields):
        try:
            with transaction.atomic():  # savepoint: a concurrent first bump may win
                StateVersion.objects.create(portfolio=portfolio, version=1, as_of=first_as_of)
                return 1, first_as_of
        except IntegrityError:
            StateVersion.objects.filter(portfolio=portfolio).update(**fields)
    return StateVersion.objects.values_list("version", "as_of").get(portfolio=portfolio)


def state_version_bump(*, portfolio: Portfolio, as_of: date | None) -> int:
    """Add one to the portfolio's version (2 queries) and return the new value. Must run
    in the caller's transaction; the first bump creates the row."""
    return _bump(portfolio, as_of, as_of)[0]


class _Notify:
    """The after-commit push of one touch; a pending one marks its portfolio as touched
    in the current transaction (see ``state_touch``)."""

    def __init__(self, portfolio_id: int) -> None:
        self.portfolio_id = portfolio_id
        self.version, self.as_of = 0, None

    def __call__(self) -> None:
        notify_update(self.portfolio_id, self.as_of, self.version)


def _pending_touch(portfolio_id: int) -> bool:
    # Django's own list of this transaction's on_commit callbacks: emptied at commit and
    # rollback, pruned when a savepoint rolls back, so a touch whose bump was rolled back
    # no longer counts and the next change bumps again.
    return any(
        isinstance(func, _Notify) and func.portfolio_id == portfolio_id
        for _, func, _ in connection.run_on_commit
    )


def state_touch(portfolio: Portfolio) -> int | None:
    """An operator changed what the pages show (configuration, a rebalance request): bump
    the version once per transaction, whatever the number of fields or objects changed,
    keeping the bar date (a first row takes ``portfolio.last_applied_date``), and push it
    after commit so the open pages refetch now. Returns the new version, or None when this
    transaction had already touched the portfolio."""
    if connection.in_atomic_block and _pending_touch(portfolio.pk):
        return None
    push = _Notify(portfolio.pk)
    push.version, push.as_of = _bump(portfolio, None, portfolio.last_applied_date)
    transaction.on_commit(push)
    return push.version


def state_version_of(portfolio: Portfolio) -> int:
    """The version of a portfolio loaded with ``select_related("state_version")`` (no
    query then); 0 before its first commit."""
    try:
        return portfolio.state_version.version
    except StateVersion.DoesNotExist:
        return 0
