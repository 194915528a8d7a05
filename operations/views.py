"""Health endpoints (anonymous, JSON, nothing but the check verdicts)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from operations.health import readiness_check


@never_cache
@require_GET
def healthz(request):
    """The process is up: no database, no other service."""
    return JsonResponse({"status": "ok"})


def readiness_payload() -> tuple[dict, int]:
    result = readiness_check()
    if result.ready:
        return {"status": "ready", "checks": result.checks}, 200
    return {"status": "not ready", "reason": result.reason, "checks": result.checks}, 503


@never_cache
@require_GET
def readyz(request):
    body, code = readiness_payload()
    return JsonResponse(body, status=code)


@never_cache
@require_GET
def api_status(request):
    """/readyz's JSON for logged-in users (401 JSON otherwise)."""
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    body, code = readiness_payload()
    return JsonResponse(body, status=code)
