"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quantsite.settings")
try:
    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    if settings.configured:
        raise
    # a missing or malformed environment variable (e.g. production without its secret
    # key): daphne stops with its one-line message, as manage.py does
    raise SystemExit(f"quantsite: configuration error: {exc}") from None

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from reporting.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
