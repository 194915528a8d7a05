"""The answer to a locked-out login (django-axes' ``AXES_LOCKOUT_CALLABLE``): 429 with
``Retry-After`` (the cool-off in seconds), JSON ``{"detail": ...}`` under /api/ like every
API error, and a short page elsewhere (the site and admin login forms)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.html import escape


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    message = settings.AXES_COOLOFF_MESSAGE
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": message}, status=429)
    else:
        response = HttpResponse(
            f"<!doctype html><title>Too many failed logins</title><h1>{escape(message)}</h1>",
            status=429,
        )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
