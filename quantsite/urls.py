"""Root URLs: health, the favicon, admin, login/logout, the dashboard, the REST API (with
its tokens, OpenAPI schema at /api/schema/ and docs page at /api/docs/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles import finders
from django.http import FileResponse, JsonResponse
from django.urls import include, path
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from operations import views as operations_views
from operations.api import tokens


@require_GET
@cache_control(public=True, max_age=86400)
def favicon(request):
    """``/favicon.ico``, which browsers ask for on every page whatever the ``<link
    rel="icon">`` says (the API's JSON, a PDF): the static copy, public, cached a day."""
    return FileResponse(open(finders.find("favicon.ico"), "rb"), content_type="image/x-icon")


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", operations_views.healthz, name="healthz"),
    path("readyz", operations_views.readyz, name="readyz"),
    path("api/status/", operations_views.api_status, name="api-status"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="registration/login.html"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # the split view serves Swagger UI's init script from a URL of its own (?script): the
    # CSP allows no inline script
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/tokens/", tokens.TokensApi.as_view(), name="api-tokens"),
    path("api/tokens/login/", tokens.TokenLoginApi.as_view(), name="api-token-login"),
    path("api/tokens/<str:token_key>/", tokens.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("api/", include("operations.api.urls")),
    # before portfolio's: /api/positions/netted/ must not be read as a position id
    path("api/", include("reporting.api.urls")),
    path("api/", include("risk.api.urls")),
    path("api/", include("portfolio.api.urls")),
    path("", include("reporting.urls")),
]


def handler404(request, exception):
    """A path under /api/ that matches no route (an unknown one, or an id the route's
    converter refuses, such as -1) answers JSON like every other API error; the rest of
    the site keeps Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)
