from django.urls import path

from reporting import control_views, export_views, scenario_views, views

app_name = "reporting"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("risk/", views.risk, name="risk"),
    path("performance/", views.performance, name="performance"),
    path("strategy/", views.strategy_first, name="strategy-first"),
    path("strategy/<str:name>/", views.strategy, name="strategy"),
    path("strategy/<str:name>/notes/", views.strategy_note, name="strategy-note"),
    path(
        "strategy/<str:name>/orders/<int:pk>/review/",
        views.strategy_order_review,
        name="strategy-order-review",
    ),
    path("scenarios/", scenario_views.scenarios, name="scenarios"),
    path("scenarios/run/", scenario_views.scenario_run, name="scenario-run"),
    path("scenarios/windows/", scenario_views.scenario_window, name="scenario-window-add"),
    path("scenarios/windows/<int:pk>/", scenario_views.scenario_window, name="scenario-window"),
    path("scenarios/shocks/", scenario_views.scenario_shock, name="scenario-shock-add"),
    path("scenarios/shocks/<int:pk>/", scenario_views.scenario_shock, name="scenario-shock"),
    path("config/", views.config, name="config"),
    path(
        "config/<int:pk>/<slug:control>/",
        control_views.config_control,
        name="config-control",
    ),
    path("status.json", views.status, name="status"),
    path("export/all.xlsx", export_views.export_all, name="export-all"),
    path("export/jobs/<int:pk>/", export_views.export_job, name="export-job"),
    path(
        "export/jobs/<int:pk>/download",
        export_views.export_job_download,
        name="export-job-download",
    ),
    path("export/<slug:table>.<slug:fmt>", export_views.export, name="export"),
]
