"""FilterSets of the reporting reads. ``portfolio`` defaults to the live portfolio (the
one the dashboard shows), so a curve never mixes two portfolios' rows. ``points`` is a
filter too (so the schema lists it): it runs last, on the rows the others kept."""

from __future__ import annotations

from django import forms
from django_filters import rest_framework as filters
from rest_framework import exceptions

from portfolio.api.base import DateRangeFilterSet, IdFilter, NameOrIdFilter
from portfolio.models import Portfolio, PortfolioSnapshot, StrategySnapshot
from reporting import selectors

MAX_POINTS = 5000


class IntegerFilter(filters.Filter):
    field_class = forms.IntegerField


class _LivePortfolioDefault(DateRangeFilterSet):
    portfolio = IdFilter(
        field_name="portfolio_id", help_text="Portfolio id (default: the live portfolio)."
    )
    portfolio_path = "portfolio_id"

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("portfolio") is None:
            queryset = queryset.filter(
                **{self.portfolio_path: selectors.live_portfolio_id_subquery()}
            )
        return super().filter_queryset(queryset)


class _CurveFilter(_LivePortfolioDefault):
    """``points=N`` (4 <= N <= 5000; >= 2 + 2 x series for several): only the dates the
    charts' decimation keeps (``selectors.curve_decimated``); absent, every date."""

    points = IntegerFilter(
        method="points_later",
        min_value=4,
        max_value=MAX_POINTS,
        help_text="Decimate to at most N dates, keeping first, last and every extreme.",
    )
    decimate_by: str | None = None

    def points_later(self, queryset, name, value: int):
        return queryset  # applied in filter_queryset, after every other filter

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        points = self.form.cleaned_data.get("points")
        if points is None:
            return queryset
        try:
            return selectors.curve_decimated(queryset=queryset, points=points, by=self.decimate_by)
        except ValueError as exc:
            raise exceptions.ValidationError({"points": [str(exc)]}) from None


class PortfolioCurveFilter(_CurveFilter):
    class Meta:
        model = PortfolioSnapshot
        fields = ["portfolio", "start", "end", "points"]


class StrategyCurveFilter(_CurveFilter):
    portfolio = IdFilter(
        field_name="strategy__portfolio_id",
        help_text="Portfolio id (default: the live portfolio).",
    )
    portfolio_path = "strategy__portfolio_id"
    decimate_by = "strategy_id"
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")

    class Meta:
        model = StrategySnapshot
        fields = ["portfolio", "strategy", "start", "end", "points"]


class NettedPortfolioFilter(filters.FilterSet):
    """The one portfolio whose positions are netted: ``portfolio`` (id), else the live one."""

    portfolio = IdFilter(field_name="id", help_text="Portfolio id (default: the live portfolio).")

    class Meta:
        model = Portfolio
        fields = ["portfolio"]

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("portfolio") is None:
            queryset = queryset.filter(id=selectors.live_portfolio_id_subquery())
        return super().filter_queryset(queryset)
