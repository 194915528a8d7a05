from django.urls import path

from reporting import export_views, views

app_name = "reporting"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("export/all.xlsx", export_views.export_all, name="export-all"),
    path("export/<slug:table>.<slug:fmt>", export_views.export, name="export"),
]
