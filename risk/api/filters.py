"""FilterSets of the risk reads (django-filter): ``start`` / ``end`` (ISO, inclusive)
and strategies by name or id, as on every endpoint."""

from __future__ import annotations

from django_filters import rest_framework as filters

from portfolio.api.base import DateRangeFilterSet, IdFilter, NameOrIdFilter
from portfolio.models import PortfolioSnapshot
from risk import models


class ViolationFilter(DateRangeFilterSet):
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    severity = filters.ChoiceFilter(choices=models.Severity.choices)
    status = filters.ChoiceFilter(choices=models.Violation.Status.choices)
    scope = filters.ChoiceFilter(field_name="limit__scope", choices=models.RiskLimit.Scope.choices)
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")
    ticker = filters.CharFilter(field_name="instrument__ticker", lookup_expr="iexact")
    limit = filters.CharFilter(field_name="limit__name", help_text="Limit name.")
    # a choice, not a BooleanFilter: that one reads any other value as "not given"
    reviewed = filters.ChoiceFilter(
        choices=[("true", "true"), ("false", "false")],
        method="reviewed_filter",
        help_text="true: reviewed (acknowledged); false: not yet.",
    )

    class Meta:
        model = models.Violation
        fields = ["portfolio", "severity", "status", "scope", "strategy", "ticker", "limit"]
        fields += ["reviewed"]

    def reviewed_filter(self, queryset, name, value):
        return queryset.filter(acknowledged_at__isnull=value != "true")


class RiskSnapshotFilter(DateRangeFilterSet):
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")

    class Meta:
        model = PortfolioSnapshot
        fields = ["portfolio", "start", "end"]


class AlertDeliveryFilter(DateRangeFilterSet):
    date_field = "created_at"
    status = filters.ChoiceFilter(choices=models.AlertDelivery.Status.choices)
    channel = filters.CharFilter(field_name="channel__name", help_text="Channel name.")
    kind = filters.ChoiceFilter(
        field_name="channel__kind", choices=models.AlertChannel.Kind.choices
    )
    violation = IdFilter(field_name="violation_id", help_text="Violation id.")
    portfolio = IdFilter(field_name="channel__portfolio_id", help_text="Portfolio id.")

    class Meta:
        model = models.AlertDelivery
        fields = ["status", "channel", "kind", "violation", "portfolio"]


class ScenarioRunFilter(DateRangeFilterSet):
    date_field = "as_of"
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    kind = filters.ChoiceFilter(choices=models.ScenarioRun.Kind.choices)
    status = filters.ChoiceFilter(choices=models.ScenarioRun.Status.choices)
    trigger = filters.ChoiceFilter(choices=models.ScenarioRun.Trigger.choices)
    name = filters.CharFilter(field_name="name", help_text="Window, shock or run label.")

    class Meta:
        model = models.ScenarioRun
        fields = ["portfolio", "kind", "status", "trigger", "name"]
