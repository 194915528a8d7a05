"""Production mode and the Content-Security-Policy (README "Production settings").

Two kinds of helper: the settings-time checks of ``DJANGO_ENV=production`` (each raises
``ImproperlyConfigured`` with one line naming the variable and the rule, so a bad
deployment stops at startup instead of serving with a weak key or the wrong hosts), and
the CSP middleware, django-csp's with the page's own websocket origin added.
"""

from __future__ import annotations

import re

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost, ImproperlyConfigured

# The length and variety Django's own deploy check asks of a key (security.W009).
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
INSECURE_PREFIX = "django-insecure-"  # what startproject writes: a key known to be throwaway
_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'


def production_secret_key_check(key: str) -> None:
    """Refuse a missing, short, repetitive or startproject-generated key in production."""
    if not key:
        raise ImproperlyConfigured(
            f"DJANGO_ENV=production needs DJANGO_SECRET_KEY (generate one: {_GENERATE})"
        )
    if key.startswith(INSECURE_PREFIX):
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY starts with {INSECURE_PREFIX!r}: that key is for development"
            f" only (generate one: {_GENERATE})"
        )
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH}"
            f" characters, {SECRET_KEY_MIN_UNIQUE} of them different (generate one: {_GENERATE})"
        )


def production_allowed_hosts_check(hosts: list[str]) -> None:
    if not hosts:
        raise ImproperlyConfigured(
            "DJANGO_ENV=production needs DJANGO_ALLOWED_HOSTS: the host names the site is"
            " served under, comma-separated (e.g. quantsite.example.com)"
        )


_HEADER = re.compile(r"[A-Za-z0-9-]+")


def proxy_ssl_header(name: str, raw: str) -> tuple[str, str] | None:
    """``SECURE_PROXY_SSL_HEADER`` from ``Header`` (value ``https``) or ``Header=value``.

    Set only behind a proxy that terminates TLS and always sets (overwrites) that header:
    otherwise a client could claim https by sending it.
    """
    raw = raw.strip()
    if not raw:
        return None
    header, _, value = raw.partition("=")
    header, value = header.strip(), value.strip() or "https"
    if not _HEADER.fullmatch(header):
        raise ImproperlyConfigured(
            f"{name}={raw!r}: expected a header name such as X-Forwarded-Proto,"
            " optionally =<value> (default https)"
        )
    return "HTTP_" + header.upper().replace("-", "_"), value


class WebsocketCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, with ``connect-src`` also naming this page's websocket
    origin (``ws://`` or ``wss://`` + the request's host). CSP Level 3 lets ``'self'``
    match ws/wss of the same host, but older browsers (Safari before 15.4, for one)
    refuse the live connection without the explicit origin."""

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # answered 400 already: no page, nothing to connect
            return parts
        scheme = "wss" if request.is_secure() else "ws"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), f"{scheme}://{host}"]
        parts.update = update
        return parts
