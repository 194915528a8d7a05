"""Admin for limits, violations, alert channels and the alert outbox."""

from __future__ import annotations

from django.contrib import admin

from risk import models


@admin.register(models.RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "portfolio",
        "scope",
        "metric",
        "direction",
        "threshold",
        "severity",
        "action",
        "enabled",
    ]
    list_filter = ["portfolio", "scope", "severity", "action", "enabled"]
    list_editable = ["enabled"]


@admin.register(models.Violation)
class ViolationAdmin(admin.ModelAdmin):
    list_display = [
        "date",
        "severity",
        "limit",
        "strategy",
        "instrument",
        "value",
        "threshold",
        "action_taken",
        "status",
        "resolved_on",
    ]
    list_filter = ["severity", "status", "portfolio"]
    list_select_related = ["limit", "strategy", "instrument"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "portfolio", "enabled", "min_severity"]
    list_filter = ["kind", "enabled"]


@admin.register(models.AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "channel", "subject", "status", "attempts", "sent_at"]
    list_filter = ["status", "channel"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False
