from django.urls import include, path
from rest_framework.routers import SimpleRouter

from reporting.api import views

router = SimpleRouter()
router.register("equity/portfolio", views.PortfolioCurveViewSet, basename="equity-portfolio")
router.register("equity/strategies", views.StrategyCurveViewSet, basename="equity-strategy")

app_name = "reporting-api"
urlpatterns = [
    path("positions/netted/", views.NettedPositionApi.as_view(), name="positions-netted"),
    path("", include(router.urls)),
]
