from django.urls import include, path
from rest_framework.routers import SimpleRouter

from operations.api import commands, views

router = SimpleRouter()
router.register("runs", views.UpdateRunViewSet, basename="run")

app_name = "operations-api"
urlpatterns = [
    path("update/", views.UpdateNowApi.as_view(), name="update"),
    path("strategies/<int:pk>/pause/", commands.StrategyPauseApi.as_view(), name="strategy-pause"),
    path(
        "strategies/<int:pk>/resume/",
        commands.StrategyResumeApi.as_view(),
        name="strategy-resume",
    ),
    path(
        "portfolios/<int:pk>/allocations/",
        commands.PortfolioAllocationsApi.as_view(),
        name="portfolio-allocations",
    ),
    path("limits/<int:pk>/", commands.RiskLimitEditApi.as_view(), name="limit-edit"),
    path(
        "violations/<int:pk>/acknowledge/",
        commands.ViolationAcknowledgeApi.as_view(),
        name="violation-acknowledge",
    ),
    path(
        "violations/<int:pk>/review/",
        commands.ViolationReviewApi.as_view(),
        name="violation-review",
    ),
    path("", include(router.urls)),
]
