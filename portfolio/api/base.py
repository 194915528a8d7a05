"""What every read endpoint shares: strict query parameters, ordering, cursor pagination and
the JSON / CSV renderers. The other apps' ``api`` packages build on it (they may read
``portfolio``; ``portfolio`` reads none of them).

Query-parameter rule, enforced once by ``StrictQueryParamsFilter`` (the first filter
backend of ``ReadViewSet``): a parameter that is neither a filter of the view's FilterSet
nor one of the known non-filter parameters (``format``, the paginator's own, ``ordering``,
the view's ``extra_query_params`` such as ``points``) answers 400 naming it; a malformed
value (django-filter's form validation, an unknown ordering field, a bad page size)
answers 400 naming the parameter and its rule. Nothing is ever silently ignored.

Dates: every date-range filter is ``start`` / ``end``, ISO dates, both inclusive.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404
from django_filters import rest_framework as filters
from drf_orjson_renderer.renderers import ORJSONRenderer
from rest_framework import exceptions, pagination, viewsets
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework_csv.renderers import CSVRenderer

from quantsite.api.pagination import (  # noqa: F401 (re-exported for the apps' views)
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CappedLimitOffsetPagination,
)

ALWAYS_KNOWN = frozenset({"format", "ordering"})
ISO_DATE = ["%Y-%m-%d"]  # only ISO: 01/02/2020 is ambiguous, so it is a 400


class CountedCursorPagination(pagination.CursorPagination):
    """Cursor pagination (stable under inserts, constant cost per page) that also answers
    ``count``, the number of rows matching the filters (one COUNT query), so the shape is
    ``{count, next, previous, results}`` like the offset-paginated lists. ``page_size``
    defaults to 200 and is capped at 1000 (a larger value is served 1000 rows)."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-id",)

    def paginate_queryset(self, queryset, request, view=None):
        self.count = queryset.count()
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data = {"count": self.count, **response.data}
        return response

    def get_paginated_response_schema(self, schema):
        shape = super().get_paginated_response_schema(schema)
        shape["required"] = ["count", "results"]
        shape["properties"] = {
            "count": {"type": "integer", "example": 123},
            **shape["properties"],
        }
        return shape


class StrictOrderingFilter(OrderingFilter):
    """DRF's ``?ordering=a,-b`` over the view's ``ordering_fields``, where an unknown field
    is a 400 naming ``ordering`` (DRF drops it silently). The view's last ``ordering``
    term (its unique tie-breaker, ``id``) is appended so pages never shuffle ties."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        valid = {item[0] for item in self.get_valid_fields(queryset, view, {"request": request})}
        bad = [term for term in fields if term.lstrip("-") not in valid]
        if bad or not fields:
            allowed = ", ".join(sorted(valid))
            raise exceptions.ValidationError(
                {"ordering": [f"unknown field {', '.join(bad) or '(empty)'}; allowed: {allowed}"]}
            )
        tie = tuple(view.ordering)[-1]
        return [*fields, tie] if tie.lstrip("-") not in {f.lstrip("-") for f in fields} else fields


class StrictQueryParamsFilter(BaseFilterBackend):
    """400 for any query parameter the view does not know (see the module note)."""

    def filter_queryset(self, request, queryset, view):
        known = set(ALWAYS_KNOWN) | set(getattr(view, "extra_query_params", ()))
        filterset_class = getattr(view, "filterset_class", None)
        if filterset_class is not None:
            known |= set(filterset_class.base_filters)
        paginator = getattr(view, "paginator", None)
        if isinstance(paginator, pagination.CursorPagination):
            known |= {paginator.cursor_query_param, paginator.page_size_query_param}
            _check_page_size(request, paginator.page_size_query_param)
        elif isinstance(paginator, pagination.LimitOffsetPagination):
            known |= {paginator.limit_query_param, paginator.offset_query_param}
            for name in (paginator.limit_query_param, paginator.offset_query_param):
                _check_int(request, name, minimum=0 if name == "offset" else 1)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise exceptions.ValidationError(
                {
                    name: [f"unknown query parameter; allowed: {', '.join(sorted(known))}"]
                    for name in unknown
                }
            )
        return queryset


def _check_int(request, name: str, *, minimum: int) -> None:
    raw = request.query_params.get(name)
    if raw is None:
        return
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise exceptions.ValidationError({name: [f"must be an integer >= {minimum}"]})


def _check_page_size(request, name: str) -> None:
    _check_int(request, name, minimum=1)


class ApiCSVRenderer(CSVRenderer):
    """``?format=csv``: one row per result (the page's ``results`` of a paginated list),
    columns as the JSON keys, nested objects flattened as ``key.sub``; numbers are written
    as numbers, dates and timestamps as the ISO text the serializers give."""

    def render(self, data, media_type=None, renderer_context=None):
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        return super().render(data, media_type, renderer_context or {})


class NameOrIdFilter(filters.CharFilter):
    """A strategy (or other named row) given by its name or its numeric id:
    ``field_name`` is the foreign key's path (``strategy``): a value of digits matches
    ``<path>_id`` or ``<path>__name``, any other matches ``<path>__name``."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        cond = Q(**{f"{self.field_name}__name": value})
        if value.isdigit():
            cond |= Q(**{f"{self.field_name}_id": int(value)})
        return qs.filter(cond)


class DateRangeFilterSet(filters.FilterSet):
    """``start`` / ``end`` (ISO dates, inclusive) over the subclass's ``date_field``."""

    date_field = "date"
    start = filters.DateFilter(
        method="filter_start", input_formats=ISO_DATE, help_text="On or after (YYYY-MM-DD)."
    )
    end = filters.DateFilter(
        method="filter_end", input_formats=ISO_DATE, help_text="On or before (YYYY-MM-DD)."
    )

    def _date_lookup(self, op: str) -> str:
        field = self.date_field
        model_field = self.queryset.model._meta.get_field(field.split("__")[0])
        suffix = "__date" if model_field.get_internal_type() == "DateTimeField" else ""
        return f"{field}{suffix}__{op}"

    def filter_start(self, qs, name, value):
        return qs.filter(**{self._date_lookup("gte"): value})

    def filter_end(self, qs, name, value):
        return qs.filter(**{self._date_lookup("lte"): value})


class ReadViewSet(viewsets.ReadOnlyModelViewSet):
    """Base of every read endpoint: strict parameters, django-filter, strict ordering,
    JSON (orjson) by default and ``?format=csv``; cursor-paginated unless a subclass sets
    ``pagination_class = CappedLimitOffsetPagination``. Subclasses set ``queryset``,
    ``serializer_class``, ``filterset_class``, ``ordering`` (its last term unique) and
    ``ordering_fields`` (plain columns only: the cursor reads the first one)."""

    filter_backends = [StrictQueryParamsFilter, filters.DjangoFilterBackend, StrictOrderingFilter]
    renderer_classes = [ORJSONRenderer, BrowsableAPIRenderer, ApiCSVRenderer]
    pagination_class = CountedCursorPagination
    extra_query_params: tuple[str, ...] = ()

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            formats = ", ".join(r.format for r in self.renderer_classes)
            raise exceptions.ValidationError(
                {"format": [f"unknown format; allowed: {formats}"]}
            ) from None
