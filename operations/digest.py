"""One digest of everything the update path stores for a portfolio ("live equals replay").

``portfolio_tables`` reads every row the update path writes for one portfolio (snapshots
with their risk fields, trades in execution order, positions, the books' and the
portfolio's carried state, rebalance events, the orders held for approval with their
review and outcome, violations with their action and resolution, the risk book, the risk
manager's audit rows and the alert outbox) as plain tuples in a
canonical order, with database ids replaced by natural keys (strategy names, tickers,
limit names, a violation's limit/target/date) and wall-clock timestamps left out, since
neither says anything about the book. ``portfolio_digest`` hashes them: floats by their
exact bits (``float.hex``), JSON with sorted keys. Two portfolios fed the same bars under
the same configuration have equal digests exactly when every stored number is bit for
bit the same; ``tables_diff`` names the first rows that differ.

Read it when no update is writing the portfolio: the tables are read one query after
another, so a read during another process's chunk can see a violation whose limit row is
not yet read, or trades of a date whose snapshot is not (a torn read, not a state the
books were ever in).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date

from portfolio.models import (
    ConfigChange,
    PendingOrder,
    Portfolio,
    PortfolioSnapshot,
    Position,
    RebalanceEvent,
    Strategy,
    StrategySnapshot,
    Trade,
)
from risk.models import AlertDelivery, RiskBook, Violation

_SKIP = {
    "id",
    "portfolio",
    "strategy",
    "instrument",
    "opened_at",
    "resolved_at",
    "created_at",
    "reviewed_at",
    "at",
}


def stored_fields(model) -> list[str]:
    """The concrete fields of ``model`` the digest compares (ids, owners, timestamps out)."""
    return [f.attname for f in model._meta.concrete_fields if f.name not in _SKIP]


def _canon(value):
    """A value in a form whose ``repr`` is exact and stable: floats as their hex bits.
    The one exception is the sign of a zero: SQLite does not keep it and PostgreSQL keeps
    it only as the driver happens to send it, and no number computed from a stored zero
    depends on it, so -0.0 counts as 0.0."""
    if isinstance(value, float):
        return (value + 0.0).hex()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _rows(queryset, fields: list[str], prefix=()) -> list[tuple]:
    return [tuple(_canon(v) for v in (*prefix, *row)) for row in queryset.values_list(*fields)]


def portfolio_tables(portfolio: Portfolio) -> dict[str, list[tuple]]:
    """Every stored row of the portfolio's books, canonical (module docstring)."""
    strategies = Strategy.objects.filter(portfolio=portfolio)
    limit_names = dict(portfolio.risk_limits.values_list("id", "name"))
    violations = Violation.objects.filter(portfolio=portfolio)
    violation_keys = _violation_keys(violations, limit_names)
    tables = {
        # StateVersion (the live pages' committed version) is deliberately left out: it
        # counts commits, so a 1-commit and a 500-commit replay end on different versions.
        "portfolio": _rows(
            Portfolio.objects.filter(pk=portfolio.pk),
            ["last_applied_date", "peak_equity", "last_equity"],
        ),
        "strategy": _rows(
            strategies.order_by("name"),
            ["name", *[f for f in stored_fields(Strategy) if f != "name"]],
        ),
        "portfolio_snapshot": _rows(
            PortfolioSnapshot.objects.filter(portfolio=portfolio).order_by("date"),
            stored_fields(PortfolioSnapshot),
        ),
        "strategy_snapshot": _rows(
            StrategySnapshot.objects.filter(strategy__portfolio=portfolio).order_by(
                "date", "strategy__name"
            ),
            ["strategy__name", *stored_fields(StrategySnapshot)],
        ),
        # id order within a date is the order the fills were executed in
        "trade": _rows(
            Trade.objects.filter(strategy__portfolio=portfolio).order_by("date", "id"),
            ["strategy__name", "instrument__ticker", *stored_fields(Trade)],
        ),
        # trade approval: every held decision, its review and its outcome
        "pending_order": _rows(
            PendingOrder.objects.filter(strategy__portfolio=portfolio).order_by(
                "decided_on", "strategy__name"
            ),
            ["strategy__name", *stored_fields(PendingOrder)],
        ),
        "position": _rows(
            Position.objects.filter(strategy__portfolio=portfolio).order_by(
                "strategy__name", "instrument__ticker"
            ),
            ["strategy__name", "instrument__ticker", "quantity", "avg_entry_price", "entry_date"],
        ),
        "rebalance": _rows(
            RebalanceEvent.objects.filter(portfolio=portfolio).order_by("date", "id"),
            stored_fields(RebalanceEvent),
        ),
        "violation": [
            (*violation_keys[pk], *(_canon(v) for v in rest))
            for pk, *rest in violations.order_by("date", "id").values_list(
                "id",
                "severity",
                "value",
                "threshold",
                "action_taken",
                "status",
                "message",
                "resolved_on",
            )
        ],
        "risk_book": [
            _risk_book_row(book, limit_names, violation_keys)
            for book in RiskBook.objects.filter(portfolio=portfolio)
        ],
        "audit_risk": _rows(
            ConfigChange.objects.filter(portfolio=portfolio, source="risk").order_by(
                "bar_date", "id"
            ),
            ["bar_date", "object_type", "object_repr", "field", "before", "after", "actor"],
        ),
        "alert": [
            (channel, *violation_keys[vid], event, _canon(subject), status)
            for channel, vid, event, subject, status in AlertDelivery.objects.filter(
                violation__portfolio=portfolio
            )
            .order_by("violation__date", "violation_id", "channel__name", "event")
            .values_list("channel__name", "violation_id", "event", "subject", "status")
        ],
    }
    return tables


def _violation_keys(violations, limit_names) -> dict[int, tuple]:
    return {
        # a violation's target: its strategy, or its ticker or group (sector / asset class)
        pk: (limit_names[limit_id], strategy or "", ticker or group or "", d.isoformat())
        for pk, limit_id, strategy, ticker, group, d in violations.values_list(
            "id", "limit_id", "strategy__name", "instrument__ticker", "group", "date"
        )
    }


def _risk_book_row(book: RiskBook, limit_names, violation_keys) -> tuple:
    """The risk book with limit ids and violation ids replaced by their natural keys."""
    state = json.loads(json.dumps(book.state))
    for b in state.get("open", []):
        b["limit_id"] = limit_names.get(b["limit_id"], b["limit_id"])
        b["violation_id"] = violation_keys.get(b.get("violation_id"))
    state["paused_by"] = {
        name: [[limit_names.get(c[0], c[0]), c[1]] for c in causes]
        for name, causes in state.get("paused_by", {}).items()
    }
    return tuple(
        _canon(v)
        for v in (book.window_bars, book.portfolio_scale, book.strategy_scales, state, book.as_of)
    )


def tables_digest(tables: dict[str, list[tuple]]) -> str:
    h = hashlib.sha256()
    for name in sorted(tables):
        h.update(name.encode())
        for row in tables[name]:
            h.update(repr(row).encode())
    return h.hexdigest()


def portfolio_digest(portfolio: Portfolio) -> str:
    """sha256 over ``portfolio_tables``: equal exactly when every stored row is."""
    return tables_digest(portfolio_tables(portfolio))


def tables_diff(a: dict[str, list[tuple]], b: dict[str, list[tuple]], limit: int = 5) -> list:
    """The first differing rows of each table (for a failing test's message)."""
    out = []
    for name in sorted(set(a) | set(b)):
        rows_a, rows_b = a.get(name, []), b.get(name, [])
        if len(rows_a) != len(rows_b):
            out.append((name, f"{len(rows_a)} rows vs {len(rows_b)}"))
        diffs = [(ra, rb) for ra, rb in zip(rows_a, rows_b, strict=False) if ra != rb]
        out.extend((name, ra, rb) for ra, rb in diffs[:limit])
    return out
