"""Root URLs: health, admin, login/logout, the dashboard, the REST API."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from operations import views as operations_views

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
    path("api/", include("operations.api.urls")),
    # before portfolio's: /api/positions/netted/ must not be read as a position id
    path("api/", include("reporting.api.urls")),
    path("api/", include("risk.api.urls")),
    path("api/", include("portfolio.api.urls")),
    path("", include("reporting.urls")),
]
