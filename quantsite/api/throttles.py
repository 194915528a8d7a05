"""DRF throttles whose rates are read from settings at request time, counted in the
``throttle`` cache (Redis when there is one, so every web process shares the counts).

DRF's own classes copy ``DEFAULT_THROTTLE_RATES`` once at import, so neither a settings
override nor a test could change a rate; these read it on each request. A throttled
request answers 429 with ``Retry-After`` (seconds), DRF's standard handling.
"""

from __future__ import annotations

from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings


class _SettingsRateMixin:
    scope: str

    @property
    def cache(self):
        return caches["throttle"]

    def get_rate(self) -> str:
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK DEFAULT_THROTTLE_RATES has no rate for scope {self.scope!r}"
            ) from None


class AnonThrottle(_SettingsRateMixin, throttling.AnonRateThrottle):
    """Anonymous requests, per client IP (scope ``anon``)."""


class UserThrottle(_SettingsRateMixin, throttling.UserRateThrottle):
    """Signed-in requests, per user (scope ``user``); anonymous ones per IP."""


class TokenLoginThrottle(_SettingsRateMixin, throttling.AnonRateThrottle):
    """Password-for-token exchanges, per client IP whoever asks (scope ``token_login``)."""

    scope = "token_login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
