"""Root URLs: health, admin, login/logout, the dashboard, the REST API (with its tokens,
OpenAPI schema at /api/schema/ and docs page at /api/docs/)."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from operations import views as operations_views
from operations.api import tokens

urlpatterns = [
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
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/tokens/", tokens.TokensApi.as_view(), name="api-tokens"),
    path("api/tokens/login/", tokens.TokenLoginApi.as_view(), name="api-token-login"),
    path("api/tokens/<str:token_key>/", tokens.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("api/", include("operations.api.urls")),
    path("api/", include("portfolio.api.urls")),
    path("", include("reporting.urls")),
]
