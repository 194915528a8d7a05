"""What every read endpoint shares: strict query parameters, ordering, cursor pagination and
the JSON / CSV renderers. The other apps' ``api`` packages build on it (they may read
``portfolio``; ``portfolio`` reads none of them).

Query-parameter rule, enforced once by ``StrictQueryParamsFilter`` (the first filter
backend of ``ReadViewSet``): a parameter that is neither a filter of the view's FilterSet
nor one of the known non-filter parameters (``format``, the paginator's own, ``ordering``,
the view's ``extra_query_params`` such as ``points``) answers 400 naming it; a malformed
value (django-filter's form validation, an unknown ordering field, a bad page size)
answers 400 naming the parameter and its rule. Nothing is ever silently ignored.

A parameter given with an empty value (``?start=``) is a 400 too (the schema documents
every free-text parameter with ``minLength: 1``); ids are integers from 1 (``IdFilter``).

Dates: every date-range filter is ``start`` / ``end``, ISO dates, both inclusive.
"""

from __future__ import annotations

import re

from django import forms
from django.db.models import Q
from django.http import Http404
from django_filters import rest_framework as filters
from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, pagination, serializers, viewsets
from rest_framework.filters import BaseFilterBackend, OrderingFilter
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.utils.urls import replace_query_param
from rest_framework_csv.renderers import CSVRenderer

from quantsite.api.pagination import (  # noqa: F401 (re-exported for the apps' views)
    DEFAULT_PAGE_SIZE,
    MAX_ID,
    MAX_PAGE_SIZE,
    CappedLimitOffsetPagination,
)

ALWAYS_KNOWN = frozenset({"format", "ordering"})
ISO_DATE = ["%Y-%m-%d"]  # only ISO: 01/02/2020 is ambiguous, so it is a 400
INTEGER = re.compile(r"-?[0-9]+")
# p<id of the page's boundary row>, o<rows to skip after it>, r: the page before it
CURSOR = re.compile(r"(?:p(?P<p>[0-9]{1,18})(?:o(?P<o>[0-9]{1,4}))?|o(?P<o2>[0-9]{1,4}))?(?P<r>r)?")
CURSOR_PATTERN = r"^(?:p[0-9]{1,18}(?:o[0-9]{1,4})?r?|o[0-9]{1,4}r?|r)$"


class _Position(str):
    """A cursor position: the boundary row's ordering value (DRF compares and filters on
    it) carrying the row's id (what the cursor is written with)."""

    pk: int

    def __new__(cls, value, pk: int):
        obj = super().__new__(cls, value)
        obj.pk = pk
        return obj


class CountedCursorPagination(pagination.CursorPagination):
    """Cursor pagination (stable under inserts, constant cost per page) that also answers
    ``count``, the number of rows matching the filters (one COUNT query), so the shape is
    ``{count, next, previous, results}`` like the offset-paginated lists. ``page_size``
    defaults to 200 and is capped at 1000 (a larger value is served 1000 rows).

    The cursor is readable text, ``p<id>[o<skip>][r]`` (``CURSOR_PATTERN``): the page
    after (``r``: before) the row with that id in the current ordering, skipping ``skip``
    rows that tie with it (capped at 1000); one extra query reads that row's ordering
    value. A cursor not of that form is a 400 naming ``cursor``; one whose row no longer
    exists is a 404. Written by ``next`` / ``previous``; clients just follow them."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = ("-id",)
    invalid_cursor_message = "not a cursor of this API (follow the next / previous links)"

    def paginate_queryset(self, queryset, request, view=None):
        self.count = queryset.count()
        self.model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        raw = request.query_params.get(self.cursor_query_param)
        if raw is None:
            return None
        match = CURSOR.fullmatch(raw)
        if not raw or match is None:
            raise exceptions.ValidationError(
                {self.cursor_query_param: [self.invalid_cursor_message]}
            )
        offset = min(int(match["o"] or match["o2"] or 0), self.offset_cutoff)
        position = None
        if match["p"] is not None:
            pk = int(match["p"])
            field = self.ordering[0].lstrip("-")
            values = self.model._base_manager.filter(pk=pk).values_list(field, flat=True)[:1]
            if not values:
                raise exceptions.NotFound(
                    f"cursor: row {pk} no longer exists; start again from the first page"
                )
            position = _Position(str(values[0]), pk=pk)
        return pagination.Cursor(offset=offset, reverse=match["r"] is not None, position=position)

    def encode_cursor(self, cursor):
        text = "" if cursor.position is None else f"p{cursor.position.pk}"
        if cursor.offset or cursor.position is None:
            text += f"o{cursor.offset}"
        text += "r" if cursor.reverse else ""
        return replace_query_param(self.base_url, self.cursor_query_param, text)

    def _get_position_from_instance(self, instance, ordering):
        value = super()._get_position_from_instance(instance, ordering)
        pk = instance["id"] if isinstance(instance, dict) else instance.pk
        return _Position(value, pk=pk)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The page cursor, as the `next` / `previous` links write it: "
                    "`p<id>[o<skip>][r]`."
                )
                parameter["schema"] = {"type": "string", "pattern": CURSOR_PATTERN}
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = (
                    f"Rows per page (default {self.page_size}, at most {self.max_page_size})."
                )
        return parameters

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

    def get_schema_operation_parameters(self, view):
        """``ordering``: a comma-separated list of the view's ``ordering_fields``, each
        ascending or, with ``-``, descending (an array, ``style: form``, not exploded)."""
        fields = sorted(view.ordering_fields)
        terms = [term for name in fields for term in (name, f"-{name}")]
        default = ",".join(view.ordering)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by these fields (`-`: descending); default `{default}`.",
                "style": "form",
                "explode": False,
                "schema": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "enum": terms},
                },
            }
        ]


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
            _check_int(request, paginator.limit_query_param, minimum=1)
            _check_int(request, paginator.offset_query_param, minimum=0, maximum=MAX_ID)
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise exceptions.ValidationError(
                {
                    name: [f"unknown query parameter; allowed: {', '.join(sorted(known))}"]
                    for name in unknown
                }
            )
        empty = sorted(name for name, value in request.query_params.items() if value == "")
        if empty:
            raise exceptions.ValidationError({name: ["must not be empty"] for name in empty})
        return queryset


def _check_int(request, name: str, *, minimum: int, maximum: int | None = None) -> None:
    raw = request.query_params.get(name)
    if raw is None:
        return
    value = int(raw) if INTEGER.fullmatch(raw) else None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        rule = f"must be an integer >= {minimum}" + (f" and <= {maximum}" if maximum else "")
        raise exceptions.ValidationError({name: [rule]})


def _check_page_size(request, name: str) -> None:
    _check_int(request, name, minimum=1)


class ApiCSVRenderer(CSVRenderer):
    """``?format=csv``: one row per result (the page's ``results`` of a paginated list),
    columns as the JSON keys, nested objects flattened as ``key.sub``; numbers are written
    as numbers, dates and timestamps as the ISO text the serializers give."""

    def render(self, data, media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        if isinstance(data, dict) and isinstance(data.get("results"), list):
            data = data["results"]
        if data == [] and "header" not in renderer_context:
            # no rows: still a CSV, the header line alone (an empty body would be no CSV)
            renderer_context = {**renderer_context, "header": _csv_header(renderer_context)}
            return super().render([{}], media_type, renderer_context).splitlines(True)[0]
        return super().render(data, media_type, renderer_context)


def _csv_header(renderer_context) -> list[str]:
    """The columns a page of the view's serializer would have (nested objects as
    ``key.sub``; a list of objects as ``key.0.sub`` for its first item)."""
    view = renderer_context.get("view")
    if view is None or not hasattr(view, "get_serializer"):
        return []
    header = []
    for name, field in view.get_serializer().fields.items():
        if isinstance(field, serializers.ListSerializer):
            header += [f"{name}.0.{sub}" for sub in field.child.fields]
        elif isinstance(field, serializers.Serializer):
            header += [f"{name}.{sub}" for sub in field.fields]
        else:
            header.append(name)
    return header


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.Filter):
    """A row's id: an integer from 1 to ``MAX_ID`` (anything else is a 400 naming the
    parameter; the schema documents the bounds)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class NameOrIdFilter(filters.CharFilter):
    """A strategy (or other named row) given by its name or its numeric id:
    ``field_name`` is the foreign key's path (``strategy``): a value of digits matches
    ``<path>_id`` or ``<path>__name``, any other matches ``<path>__name``."""

    def filter(self, qs, value):
        if value in (None, ""):
            return qs
        cond = Q(**{f"{self.field_name}__name": value})
        if re.fullmatch(r"[0-9]{1,18}", value):  # an id (ASCII digits, within bigint)
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
        if not force and request.query_params.get("format") == "":
            raise exceptions.ValidationError({"format": ["must not be empty"]})
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            formats = ", ".join(r.format for r in self.renderer_classes)
            raise exceptions.ValidationError(
                {"format": [f"unknown format; allowed: {formats}"]}
            ) from None
