from django.urls import include, path
from rest_framework.routers import SimpleRouter

from operations.api import views

router = SimpleRouter()
router.register("runs", views.UpdateRunViewSet, basename="run")

app_name = "operations-api"
urlpatterns = [
    path("update/", views.UpdateNowApi.as_view(), name="update"),
    path("", include(router.urls)),
]
