from django.contrib import admin

from reporting.models import Note, Tag


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
