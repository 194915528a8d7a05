"""Health endpoints (anonymous, JSON, nothing but the check verdicts)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from operations.health import readiness_check


@never_cache
@require_GET
def healthz(request):
    """The process is up: no database, no other service."""
    return JsonResponse({"status": "ok"})


def readiness_payload() -> tuple[dict, int]:
    result = readiness_check()
    extra = {"warnings": result.warnings} if result.warnings else {}
    if result.ready:
        return {"status": "ready", "checks": result.checks, **extra}, 200
    body = {"status": "not ready", "reason": result.reason, "checks": result.checks}
    return {**body, **extra}, 503


@never_cache
@require_GET
def readyz(request):
    body, code = readiness_payload()
    return JsonResponse(body, status=code)


class ReadinessSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ready", "not ready"])
    reason = serializers.CharField(required=False, help_text="Only when not ready.")
    checks = serializers.DictField(
        child=serializers.CharField(),
        help_text='Each check ("database", "worker", ...): "ok" or why not.',
    )
    warnings = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text='Only when there are any: {"prices": "stale"}; the site is still ready.',
    )


@never_cache
@extend_schema(responses={200: ReadinessSerializer, 503: ReadinessSerializer})
@api_view(["GET"])
def api_status(request):
    """/readyz's JSON for signed-in users (any API authentication; 401 JSON otherwise)."""
    body, code = readiness_payload()
    return Response(body, status=code)
