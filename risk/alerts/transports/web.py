"""The HTTP transport every web integration sends through: one request, no redirects,
errors that name the host only (webhook paths are secrets)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from risk.alerts.transports.base import DeliveryError
from risk.engine import alert_formats as fmt

BODY_EXCERPT_CHARS = 300


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure (3xx in last_error), never a silent re-POST elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def checked_url(url: str) -> str:
    if urlsplit(url).scheme not in ("http", "https"):
        raise DeliveryError(f"URL must be http or https, got {url[:60]!r}")
    return url


def excerpt(content: bytes) -> str:
    text = content[: BODY_EXCERPT_CHARS * 4].decode("utf-8", "replace").strip()
    return " ".join(text.split())[:BODY_EXCERPT_CHARS] or "(empty body)"


def send_request(request: fmt.HttpRequest):
    """A no-argument send of one prepared request (what every web sender returns)."""
    return lambda: http_send(request)


def http_send(request: fmt.HttpRequest) -> tuple[int, bytes]:
    """Send one request; (status, body) on a 2xx, DeliveryError otherwise. Errors name the
    host only: webhook paths are secrets."""
    host = urlsplit(request.url).hostname or "?"
    req = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with _OPENER.open(req, timeout=request.timeout) as response:
            return response.status, response.read(1 << 16)
    except urllib.error.HTTPError as exc:
        content = exc.read(4096) if exc.fp else b""
        raise DeliveryError(f"HTTP {exc.code} from {host}: {excerpt(content)}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise DeliveryError(f"timed out after {request.timeout:g} s ({host})") from None
        raise DeliveryError(f"cannot reach {host}: {exc.reason}") from None
    except TimeoutError:
        raise DeliveryError(f"timed out after {request.timeout:g} s ({host})") from None
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__} talking to {host}: {exc}") from None
