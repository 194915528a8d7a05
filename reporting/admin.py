from django.contrib import admin

from reporting import export_jobs
from reporting.models import ExportJob, Note, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name",)
    search_fields = ("name",)


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    """Notes are edited on the strategy page (validated there); the admin lists them."""

    list_display = ("strategy", "ticker", "trade", "author", "updated_at")
    list_filter = ("strategy__portfolio", "tags")
    search_fields = ("text", "ticker", "strategy__name")
    raw_id_fields = ("trade",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(ExportJob)
class ExportJobAdmin(admin.ModelAdmin):
    """Background exports, read-only: the export views create them, the task queue writes
    them (``reporting.export_jobs``). Deleting one deletes its file too."""

    list_display = (
        "id",
        "user",
        "table_format",
        "status",
        "progress",
        "created_at",
        "finished_at",
        "expires_at",
    )
    list_filter = ("status",)
    list_select_related = ("user",)
    search_fields = ("user__username", "download_name")
    readonly_fields = [f.name for f in ExportJob._meta.fields] + ["expires_at"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: ExportJob) -> None:
        export_jobs.export_jobs_delete(jobs=ExportJob.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        export_jobs.export_jobs_delete(jobs=queryset)

    @admin.display(description="Table / format", ordering="table")
    def table_format(self, obj: ExportJob) -> str:
        return f"{obj.table}.{obj.fmt}"

    @admin.display(description="Progress")
    def progress(self, obj: ExportJob) -> str:
        share = obj.rows_done / obj.rows_total if obj.rows_total else 0.0
        return f"{obj.rows_done:,} / {obj.rows_total:,} rows ({share:.0%})"

    @admin.display(description="File deleted at")
    def expires_at(self, obj: ExportJob):
        return export_jobs.export_job_expires_at(obj) or "-"
