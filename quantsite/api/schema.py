"""The OpenAPI schema: every operation documents its error shapes.

``AutoSchema`` (``DEFAULT_SCHEMA_CLASS``) adds to each operation the errors any endpoint
can answer, unless the view declared that status itself: 400 (a bad body or query
parameter, ``ValidationError``), 401 (no or bad credentials), 403 (not allowed, or the
session's CSRF check failed), 404 (for paths with an id, and cursor-paginated lists,
whose cursor names a row), 415 (a body of a type the endpoint does not parse, on POST,
PUT and PATCH), 429 (throttled, with
``Retry-After``). Views declare the rest (409, 503) with ``extend_schema``.

Query parameters document what the API enforces (``portfolio/api/base.py``): a filter's
bounds (``min_value`` / ``max_value``) as ``minimum`` / ``maximum``, and every free-text
parameter ``minLength: 1`` with no NUL character (an empty value, or a NUL, is a 400:
Django's forms refuse NUL, which PostgreSQL cannot store).
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny


class ErrorSerializer(serializers.Serializer):
    """Every error except a validation error: ``{"detail": "..."}``."""

    detail = serializers.CharField(help_text="What went wrong, in one sentence.")


class ValidationErrorSerializer(serializers.Serializer):
    """A 400: each offending field or query parameter (or ``detail``/``non_field_errors``)
    mapped to its messages."""


class ValidationErrorSchema(OpenApiSerializerExtension):
    target_class = ValidationErrorSerializer

    def map_serializer(self, auto_schema, direction):
        messages = {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}},
                {"type": "object"},
            ]
        }
        return {
            "type": "object",
            "description": "Each offending field or query parameter mapped to its messages.",
            "additionalProperties": messages,
            "example": {"ticker": ["unknown ticker 'XYZ'"]},
        }


_ERRORS = {
    "400": (ValidationErrorSerializer, "Bad request: a malformed body or query parameter."),
    "401": (ErrorSerializer, "No credentials, or an invalid, expired or revoked token."),
    "403": (ErrorSerializer, "Not allowed (staff only, or the session's CSRF check failed)."),
    "404": (ErrorSerializer, "No such object (or the cursor's row no longer exists)."),
    "415": (ErrorSerializer, "The body's Content-Type is not one the endpoint parses."),
    "429": (ErrorSerializer, "Throttled: retry after the `Retry-After` header's seconds."),
}


NO_NUL = r"^[^\x00]+$"


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, (serializer, description) in _ERRORS.items():
            if code in responses or (code == "404" and not self._may_not_find()):
                continue
            if code in ("401", "403") and not self._needs_auth():
                continue
            if code == "415" and self.method not in ("POST", "PUT", "PATCH"):
                continue
            responses[code] = self._get_response_for_code(
                OpenApiResponse(response=serializer, description=description), code
            )
            if code == "429":
                responses[code]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds until the next request is allowed.",
                        "schema": {"type": "integer"},
                    }
                }
        return responses

    def _get_parameters(self):
        parameters = super()._get_parameters()
        filterset = getattr(self.view, "filterset_class", None)
        declared = filterset.base_filters if filterset is not None else {}
        for parameter in parameters:
            if parameter["in"] != "query":
                continue
            schema = parameter["schema"]
            declared_filter = declared.get(parameter["name"])
            if declared_filter is not None:
                extra = declared_filter.extra
                if extra.get("help_text") and not parameter.get("description"):
                    parameter["description"] = str(extra["help_text"])
                for key, bound in (("minimum", "min_value"), ("maximum", "max_value")):
                    if extra.get(bound) is not None:
                        schema.setdefault(key, extra[bound])
            free_text = not ({"enum", "format", "pattern", "$ref"} & set(schema))
            if schema.get("type") == "string" and free_text:
                schema.update(minLength=1, pattern=NO_NUL)
        return parameters

    def _may_not_find(self) -> bool:
        """A path with an id, or a cursor-paginated list (whose cursor names a row)."""
        paginator = getattr(self.view, "pagination_class", None)
        cursor = isinstance(paginator, type) and issubclass(paginator, CursorPagination)
        return "{" in self.path or (cursor and self._is_list_view())

    def _needs_auth(self) -> bool:
        return not all(isinstance(p, AllowAny) for p in self.view.get_permissions())
