"""Query parameters of the dashboard pages, read strictly.

A malformed typed value (a date that is not YYYY-MM-DD, a window or page that is not a
whole number) is a 400 naming the parameter and the rule, so a typo never silently shows
an unfiltered page. A well-formed choice that no longer exists (a strategy filter from an
old bookmark, an unknown severity) is dropped as before: the page states which filters
apply.
"""

from __future__ import annotations

from datetime import date

MAX_PAGE = 1_000_000
MAX_INT = 10**18 - 1  # 18 digits: what is_id takes


class QueryError(ValueError):
    """A page's query parameter breaks its rule: ``?<param>=<value>: <rule>``."""

    def __init__(self, param: str, value: str, rule: str) -> None:
        self.param, self.rule = param, rule
        super().__init__(f"query parameter {param}={value[:40]!r}: {rule}")


def query_date(params, name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        if len(value) == 10:  # fromisoformat also takes 20200102 and week dates
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise QueryError(name, value, "must be a date as YYYY-MM-DD")


def query_int(params, name: str, *, default: int, minimum: int, maximum: int = MAX_INT) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not is_id(value) or not minimum <= int(value) <= maximum:
        raise QueryError(name, value, f"must be a whole number from {minimum} to {maximum}")
    return int(value)


def is_id(value: str) -> bool:
    """A database id as text: ASCII digits only (``"²".isdigit()`` is true but ``int``
    refuses it) and short enough for a 64-bit column (a longer one overflows the query)."""
    return value.isascii() and value.isdigit() and len(value) <= 18
