"""Admin for limits, violations, alert channels and the alert outbox."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from portfolio import admin as portfolio_admin
from portfolio.admin import admin_origin
from portfolio.engine.errors import ConfigError
from portfolio.models import Strategy
from portfolio.services.controls import config_form_save
from risk import alerts, models, services
from risk.engine.channel_secrets import MASK, config_masked, config_merge
from risk.engine.limits_config import limit_check


class RiskLimitForm(forms.ModelForm):
    """The same rules as config/risk_limits.yaml: a known metric for the scope, its
    direction and sign, and an action no harsher than the severity allows."""

    class Meta:
        model = models.RiskLimit
        fields = [
            "portfolio",
            "name",
            "scope",
            "strategy",
            "instrument",
            "group",
            "metric",
            "direction",
            "threshold",
            "severity",
            "action",
            "recovery_threshold",
            "recovery_steps",
            "cooldown_bars",
            "enabled",
        ]

    def clean(self):
        data = super().clean()
        needed = ("scope", "metric", "direction", "threshold", "severity", "action")
        if all(data.get(k) not in (None, "") for k in needed):
            errors = limit_check(**{k: data[k] for k in needed})
            if errors:
                raise forms.ValidationError(errors)
        return data


@admin.register(models.RiskLimit)
class RiskLimitAdmin(portfolio_admin.AuditedAdmin):
    form = RiskLimitForm
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


@admin.action(description="Acknowledge (with a note)")
def acknowledge(modeladmin, request, queryset):
    """The only human action on a violation; asks for the note first."""
    note = request.POST.get("note", "")
    if "apply" in request.POST:
        try:
            done = sum(
                services.violation_acknowledge(violation=v, note=note, origin=admin_origin(request))
                for v in queryset
            )
        except ConfigError as exc:
            modeladmin.message_user(request, f"{exc.where}: {exc.rule}", messages.ERROR)
            return None
        modeladmin.message_user(request, f"{done} violation(s) acknowledged", messages.SUCCESS)
        return None
    return TemplateResponse(
        request,
        "admin/risk/violation/acknowledge.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Acknowledge violations",
            "violations": queryset,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": modeladmin.model._meta,
        },
    )


class ReviewedFilter(admin.SimpleListFilter):
    title = "review"
    parameter_name = "reviewed"

    def lookups(self, request, model_admin):
        return [("no", "Unreviewed"), ("yes", "Reviewed")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(acknowledged_at__isnull=self.value() == "no")
        return queryset


@admin.register(models.Violation)
class ViolationAdmin(admin.ModelAdmin):
    list_display = [
        "date",
        "severity",
        "limit",
        "strategy",
        "instrument",
        "group",
        "value",
        "threshold",
        "action_taken",
        "status",
        "resolved_on",
        "review",
    ]
    list_filter = ["severity", "status", ReviewedFilter, "portfolio"]
    list_select_related = ["limit", "strategy", "instrument"]
    actions = [acknowledge]
    readonly_fields = ["review", "linked_changes"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("review_changes")

    @admin.display(description="Review")
    def review(self, obj) -> str:
        """The violation log's line: who reviewed it, when, the note, how many changes."""
        if obj.acknowledged_at is None:
            return "unreviewed"
        n = len(obj.review_changes.all())
        when = obj.acknowledged_at.strftime("%Y-%m-%d %H:%M")
        linked = f"{n} change{'' if n == 1 else 's'} linked"
        return f"reviewed by {obj.acknowledged_by} at {when}: {obj.acknowledged_note}; {linked}"

    @admin.display(description="Linked configuration changes")
    def linked_changes(self, obj) -> str:
        rows = [
            f"#{c.pk} {c.object_type} {c.object_repr}.{c.field}: {c.before} -> {c.after} "
            f"({c.actor or '?'}, {c.source}, {c.at:%Y-%m-%d %H:%M})"
            for c in obj.review_changes.all()
        ]
        return "; ".join(rows) or "-"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AlertChannelForm(forms.ModelForm):
    """The config's secrets are write-only: the form shows them masked ("••••abcd"), and a
    masked value saved unchanged keeps the stored secret (``channel_secrets.config_merge``);
    a new value is typed in full."""

    class Meta:
        model = models.AlertChannel
        fields = ["portfolio", "name", "kind", "enabled", "min_severity", "config"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["config"] = config_masked(self.instance.config)

    def clean_config(self):
        stored = self.instance.config if self.instance.pk else {}
        merged, unmatched = config_merge(self.cleaned_data.get("config"), stored)
        if unmatched:
            raise forms.ValidationError(
                f"{', '.join(unmatched)}: a masked value (starting {MASK}) only keeps the "
                "stored secret it was shown for; type the full new value"
            )
        return merged


@admin.register(models.AlertChannel)
class AlertChannelAdmin(portfolio_admin.AuditedAdmin):
    form = AlertChannelForm
    list_display = ["name", "kind", "portfolio", "enabled", "min_severity"]
    list_filter = ["kind", "enabled"]
    actions = ["send_test_alert"]

    @admin.action(description="Send test alert")
    def send_test_alert(self, request, queryset) -> None:
        for channel in queryset:
            alerts.alert_channel_test(channel=channel)
        self.message_user(
            request,
            f"Queued a test alert on {len(queryset)} channel(s); see Alert deliveries.",
            messages.SUCCESS,
        )


@admin.register(models.AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "channel",
        "violation",
        "event",
        "subject",
        "status",
        "attempts",
        "next_attempt_at",
        "error_excerpt",
        "sent_at",
    ]
    list_filter = ["status", "event", "channel"]
    list_select_related = ["channel", "violation"]
    readonly_fields = [
        "channel",
        "violation",
        "event",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "sent_at",
    ]
    actions = ["retry_now"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="Last error")
    def error_excerpt(self, obj: models.AlertDelivery) -> str:
        return obj.last_error[:120]

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset) -> None:
        count = alerts.alert_deliveries_retry(deliveries=queryset)
        self.message_user(request, f"{count} unsent delivery(ies) due now.", messages.SUCCESS)


@admin.action(description="Resume (operator override of a risk pause)")
def resume_strategies(modeladmin, request, queryset):
    for strategy in queryset:
        origin = admin_origin(request)
        if services.strategy_resume(strategy=strategy, actor=origin.actor, ip=origin.ip):
            modeladmin.message_user(request, f"{strategy.name} resumes at the next bar")


# The risk manager owns the pauses it makes, so its operator override is risk's action on
# the portfolio app's strategy admin (portfolio never imports risk).
admin.site.unregister(Strategy)


@admin.register(Strategy)
class StrategyAdmin(portfolio_admin.StrategyAdmin):
    actions = [resume_strategies]


@admin.register(models.RiskBook)
class RiskBookAdmin(admin.ModelAdmin):
    """The risk manager's state is written by the update path only: viewable here."""

    list_display = ["portfolio", "window_bars", "portfolio_scale", "as_of"]
    readonly_fields = ["portfolio", "portfolio_scale", "strategy_scales", "state", "as_of"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class _GlobalAuditedAdmin(portfolio_admin.AuditedAdmin):
    """Audited like the limits, but global (no portfolio on the audit row)."""

    def save_model(self, request, obj, form, change) -> None:
        config_form_save(
            obj=obj,
            fields=list(form.changed_data),
            portfolio_of=lambda o: None,
            origin=admin_origin(request),
        )


@admin.register(models.StressWindow)
class StressWindowAdmin(_GlobalAuditedAdmin):
    list_display = ["name", "start", "end", "enabled", "description"]
    list_editable = ["enabled"]


@admin.register(models.ShockScenario)
class ShockScenarioAdmin(_GlobalAuditedAdmin):
    list_display = ["name", "market", "sectors", "tickers", "enabled"]
    list_editable = ["enabled"]


@admin.register(models.ScenarioRun)
class ScenarioRunAdmin(portfolio_admin.ReadOnlyAdmin):
    list_display = ["created_at", "portfolio", "kind", "name", "as_of", "status", "trigger"]
    list_filter = ["kind", "status", "trigger"]
    readonly_fields = [f.name for f in models.ScenarioRun._meta.fields]
