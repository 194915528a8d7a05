"""Admin for every portfolio model. Book state and history are read-only here: only the
update path writes them, so the admin cannot create money or rewrite a trade."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from portfolio import models
from portfolio.engine.checks import ConfigChecker
from portfolio.engine.config_schema import allocation_sum_error, parse_allocation_params
from portfolio.engine.errors import ConfigError
from portfolio.services.controls import Origin, config_form_save, strategy_values_check


def admin_origin(request) -> Origin:
    """Who saves in the admin, for the audit trail."""
    return Origin.of_request(request, source="admin")


class AuditedAdmin(admin.ModelAdmin):
    """A configuration model whose admin saves (change form and list_editable) record
    their audit rows, before and after, through the same helper as the page."""

    def save_model(self, request, obj, form, change) -> None:
        config_form_save(
            obj=obj,
            fields=list(form.changed_data),
            portfolio_of=lambda o: o.portfolio,
            origin=admin_origin(request),
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """History written by the update path: viewable, never editable by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class HistoryAdmin(ReadOnlyAdmin):
    """A history table: no add, change or delete by hand."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(models.Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["ticker", "name", "sector", "asset_class", "multiplier", "is_benchmark"]
    list_filter = ["asset_class", "sector", "is_benchmark"]
    search_fields = ["ticker", "name"]


@admin.register(models.PriceBar)
class PriceBarAdmin(ReadOnlyAdmin):
    list_display = ["instrument", "date", "close", "source", "repaired"]
    list_filter = ["source", "repaired", "instrument"]
    date_hierarchy = "date"
    list_select_related = ["instrument"]


@admin.register(models.DataIssue)
class DataIssueAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "provider", "ticker", "date", "row", "rule", "action"]
    list_filter = ["provider", "rule", "action"]
    search_fields = ["ticker", "detail", "source"]


class PortfolioForm(forms.ModelForm):
    """Allocation rules checked by the same validator as the YAML file."""

    class Meta:
        model = models.Portfolio
        fields = [
            "name",
            "initial_capital",
            "leverage_target",
            "allocation_method",
            "allocation_params",
            "rebalance_trigger",
            "rebalance_frequency",
            "rebalance_trading_day",
            "rebalance_threshold",
            "rebalance_method",
            "commission_bps",
            "slippage_bps",
            "whole_shares",
            "trade_band",
            "is_backtest",
        ]

    def clean(self):
        data = super().clean()
        names = (
            list(self.instance.strategies.values_list("name", flat=True))
            if self.instance.pk
            else []
        )
        method = data.get("allocation_method")
        if method and data.get("leverage_target"):
            try:
                parse_allocation_params(
                    ConfigChecker("admin"),
                    method,
                    data.get("allocation_params") or {},
                    names,
                    float(data["leverage_target"]),
                )
            except ConfigError as exc:
                raise forms.ValidationError(
                    {"allocation_params": f"{exc.where}: {exc.rule}"}
                ) from exc
        return data


RETIRED_STATUS = [(models.Strategy.Status.PAUSED, "paused (retired)")]


class StrategyInlineFormSet(forms.BaseInlineFormSet):
    """Target allocations must still sum to the leverage target after the edit, and each
    row's status passes the strategy form's rule (``strategy_values_check``: a retired
    strategy stays paused). A retired strategy's row offers only "paused" and keeps its
    allocation (read-only)."""

    def add_fields(self, form, index) -> None:
        super().add_fields(form, index)
        if form.instance.pk is not None and form.instance.retired_at is not None:
            form.fields["status"].widget.choices = RETIRED_STATUS
            form.fields["target_allocation"].disabled = True

    def clean(self):
        super().clean()
        for f in self.forms:
            if f.cleaned_data and "status" in f.changed_data:
                try:
                    strategy_values_check(
                        strategy=f.instance, values={"status": f.cleaned_data["status"]}
                    )
                except ConfigError as exc:
                    f.add_error("status", f"{exc.where}: {exc.rule}")
        allocations = [
            float(f.cleaned_data.get("target_allocation") or 0)
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        # the admin stores 6 decimals: compare at that precision
        error = allocation_sum_error(
            allocations, float(self.instance.leverage_target or 1), tolerance=1e-6
        )
        if self.forms and error:
            raise forms.ValidationError(error)


class StrategyInline(admin.TabularInline):
    model = models.Strategy
    formset = StrategyInlineFormSet
    fields = ["name", "signal_type", "target_allocation", "current_allocation", "status"]
    readonly_fields = ["name", "signal_type", "current_allocation"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # add a strategy from its signal type on the configuration page


@admin.action(description="Rebalance at the next bar (manual request)")
def rebalance_next_bar(modeladmin, request, queryset):
    from portfolio.services.rebalance import rebalance_request

    for portfolio in queryset:
        result = rebalance_request(portfolio=portfolio, origin=admin_origin(request))
        modeladmin.message_user(
            request,
            f"{portfolio}: rebalance request {result.request.request_key} will apply at the "
            "first bar after "
            f"{portfolio.last_applied_date or 'the first bar'}",
            messages.SUCCESS,
        )


@admin.register(models.Portfolio)
class PortfolioAdmin(admin.ModelAdmin):
    form = PortfolioForm
    actions = [rebalance_next_bar]
    list_display = [
        "name",
        "initial_capital",
        "allocation_method",
        "rebalance_trigger",
        "rebalance_frequency",
        "last_applied_date",
        "is_backtest",
    ]
    list_filter = ["is_backtest", "allocation_method"]
    readonly_fields = [
        "last_applied_date",
        "peak_equity",
        "last_equity",
        "config_source",
        "created_at",
    ]
    inlines = [StrategyInline]

    def save_model(self, request, obj, form, change) -> None:
        config_form_save(
            obj=obj,
            fields=list(form.changed_data),
            portfolio_of=lambda p: p,
            origin=admin_origin(request),
        )

    def save_formset(self, request, form, formset, change) -> None:
        # the inline's allocations and statuses: audited like the strategy form (the
        # inline adds and deletes nothing)
        formset.save(commit=False)
        for obj, fields in formset.changed_objects:
            config_form_save(
                obj=obj,
                fields=list(fields),
                portfolio_of=lambda s: s.portfolio,
                origin=admin_origin(request),
            )


class StrategyForm(forms.ModelForm):
    """The same rules as the YAML, through the operator controls' validator: parameters
    by the signal's checks, risk_config by the sizing rules (an unknown key such as the
    risk manager's ``risk_scale`` is refused), the allocations' sum."""

    class Meta:
        model = models.Strategy
        fields = [
            "portfolio",
            "name",
            "signal_type",
            "parameters",
            "target_allocation",
            "status",
            "risk_config",
            "commission_bps",
            "slippage_bps",
            "trade_band",
            "approval_required",
            "position_order",
        ]

    def clean(self):
        data = super().clean()
        if self.instance.pk is None or self.errors:
            return data
        values = {k: data[k] for k in self.changed_data if k in data}
        try:
            strategy_values_check(strategy=self.instance, values=values)
        except ConfigError as exc:
            prefix = f"strategy {self.instance.name}."
            field = next((f for f in values if exc.where.startswith(prefix + f)), None)
            message = f"{exc.where}: {exc.rule}"
            raise forms.ValidationError({field: message} if field else message) from exc
        return data


@admin.register(models.Strategy)
class StrategyAdmin(AuditedAdmin):
    """The risk app adds its operator actions (resume a risk pause) to this admin."""

    form = StrategyForm

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # strategies come from the YAML (validated there)

    def get_readonly_fields(self, request, obj=None):
        fields = [*super().get_readonly_fields(request, obj), "portfolio", "name"]
        if obj is not None and obj.retired_at is not None:
            # retired for good: paused with allocation 0 (the form's rule refuses
            # "active" too); its history stays viewable
            fields += ["status", "target_allocation", "retired_at"]
        return fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # retire (pause) instead: a strategy's history is kept

    list_display = ["name", "portfolio", "signal_type", "target_allocation", "status"]
    list_filter = ["portfolio", "status", "signal_type"]
    readonly_fields = [
        "cash",
        "realized_pnl",
        "last_equity",
        "nav",
        "peak_nav",
        "pending_targets",
        "pending_decided_on",
        "current_allocation",
        "history_days",
    ]


@admin.register(models.Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = ["strategy", "instrument", "quantity", "avg_entry_price", "entry_date"]
    list_filter = ["strategy__portfolio", "strategy"]
    list_select_related = ["strategy", "instrument"]


@admin.register(models.Trade)
class TradeAdmin(HistoryAdmin):
    list_display = [
        "date",
        "strategy",
        "instrument",
        "side",
        "quantity",
        "price",
        "value",
        "cost",
        "realized_pnl",
        "reason",
        "detail",
    ]
    list_filter = ["reason", "side", "strategy__portfolio", "strategy"]
    date_hierarchy = "date"
    list_select_related = ["strategy", "instrument"]


@admin.register(models.StrategySnapshot)
class StrategySnapshotAdmin(HistoryAdmin):
    list_display = ["strategy", "date", "equity", "cash", "leverage", "weight", "drawdown"]
    list_filter = ["strategy__portfolio", "strategy"]
    date_hierarchy = "date"
    list_select_related = ["strategy"]


@admin.register(models.PortfolioSnapshot)
class PortfolioSnapshotAdmin(HistoryAdmin):
    list_display = ["portfolio", "date", "equity", "cash", "leverage", "drawdown"]
    list_filter = ["portfolio"]
    date_hierarchy = "date"


def _orders_review(modeladmin, request, queryset, decision: str) -> None:
    from portfolio.services.approvals import order_review

    for order in queryset:
        try:
            order_review(order_id=order.pk, decision=decision, origin=admin_origin(request))
        except ConfigError as exc:
            modeladmin.message_user(
                request, f"Refused, nothing changed: {exc.where}: {exc.rule}", messages.ERROR
            )
        else:
            modeladmin.message_user(request, f"{order}: {decision}d", messages.SUCCESS)


@admin.action(description="Approve: fill at the next bar")
def orders_approve(modeladmin, request, queryset):
    _orders_review(modeladmin, request, queryset, "approve")


@admin.action(description="Reject: never fill")
def orders_reject(modeladmin, request, queryset):
    _orders_review(modeladmin, request, queryset, "reject")


@admin.register(models.PendingOrder)
class PendingOrderAdmin(HistoryAdmin):
    """Trade approval: written by the update path; a person's only actions are approve
    and reject (through the same service as the strategy page, audited)."""

    actions = [orders_approve, orders_reject]
    list_display = [
        "strategy",
        "decided_on",
        "status",
        "resolved_on",
        "fills_count",
        "cause",
        "reviewed_by",
    ]
    list_filter = ["status", "strategy__portfolio", "strategy"]
    date_hierarchy = "decided_on"


@admin.register(models.RebalanceEvent)
class RebalanceEventAdmin(HistoryAdmin):
    list_display = [
        "portfolio",
        "date",
        "trigger",
        "method",
        "capital_moved",
        "trades_count",
        "cost",
    ]
    list_filter = ["portfolio", "trigger"]


@admin.register(models.RebalanceRequest)
class RebalanceRequestAdmin(HistoryAdmin):
    list_display = [
        "requested_at",
        "portfolio",
        "request_key",
        "method",
        "after_date",
        "status",
        "event",
    ]
    list_filter = ["portfolio", "status"]


@admin.register(models.UpdateRun)
class UpdateRunAdmin(HistoryAdmin):
    list_display = [
        "started_at",
        "portfolio",
        "trigger",
        "status",
        "first_date",
        "last_date",
        "dates_applied",
        "error",
    ]
    list_filter = ["status", "trigger"]


@admin.register(models.RunLock)
class RunLockAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "host", "pid", "acquired_at", "heartbeat_at"]


@admin.register(models.ConfigChange)
class ConfigChangeAdmin(HistoryAdmin):
    list_display = ["at", "actor", "source", "object_type", "object_repr", "field"]
    list_filter = ["source", "object_type"]


@admin.register(models.StateVersion)
class StateVersionAdmin(ReadOnlyAdmin):
    """The live pages' committed state version: written by the update path only."""

    list_display = ["portfolio", "version", "as_of", "committed_at"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
