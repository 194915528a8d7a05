"""The API's default pagination (``DEFAULT_PAGINATION_CLASS``), in a module that imports
no views (DRF reads the setting while its own viewsets module is being imported)."""

from __future__ import annotations

from rest_framework import pagination

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 200
MAX_ID = 2**63 - 1  # the largest id (and offset) SQLite and PostgreSQL store: bigint


class CappedLimitOffsetPagination(pagination.LimitOffsetPagination):
    """Offset pagination for the short lists (portfolios, strategies, positions,
    rebalances, and any view that sets none): ``limit`` defaults to 200 and is capped at
    1000 (an unbounded limit overflowed SQLite's integers)."""

    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view):
        bounds = {
            self.limit_query_param: {"minimum": 1},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_ID},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"] = {**parameter["schema"], **bounds.get(parameter["name"], {})}
        return parameters
