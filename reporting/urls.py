from django.urls import path

from reporting import views

app_name = "reporting"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("risk/", views.risk, name="risk"),
    path("performance/", views.performance, name="performance"),
    path("strategy/", views.strategy_first, name="strategy-first"),
    path("strategy/<str:name>/", views.strategy, name="strategy"),
    path("config/", views.config, name="config"),
    path("status.json", views.status, name="status"),
]
