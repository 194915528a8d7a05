"""The API's default pagination (``DEFAULT_PAGINATION_CLASS``), in a module that imports
no views (DRF reads the setting while its own viewsets module is being imported)."""

from __future__ import annotations

from rest_framework import pagination

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 200


class CappedLimitOffsetPagination(pagination.LimitOffsetPagination):
    """Offset pagination for the short lists (portfolios, strategies, positions,
    rebalances, and any view that sets none): ``limit`` defaults to 200 and is capped at
    1000 (an unbounded limit overflowed SQLite's integers)."""

    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE
