from django.urls import include, path
from rest_framework.routers import SimpleRouter

from risk.api import scenarios, views

router = SimpleRouter()
router.register("violations", views.ViolationViewSet, basename="violation")
router.register("risk/snapshots", views.RiskSnapshotViewSet, basename="risk-snapshot")
router.register("scenarios", scenarios.ScenarioRunViewSet, basename="scenario")
router.register("alert-deliveries", views.AlertDeliveryViewSet, basename="alert-delivery")

app_name = "risk-api"
urlpatterns = [
    path("scenarios/run/", scenarios.ScenarioRunApi.as_view(), name="scenario-run"),
    path("", include(router.urls)),
]
