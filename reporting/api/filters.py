"""FilterSets of the reporting reads. ``portfolio`` defaults to the live portfolio (the
one the dashboard shows), so a curve never mixes two portfolios' rows."""

from __future__ import annotations

from django_filters import rest_framework as filters

from portfolio.api.base import DateRangeFilterSet, NameOrIdFilter
from portfolio.models import PortfolioSnapshot, StrategySnapshot
from reporting import selectors


class _LivePortfolioDefault(DateRangeFilterSet):
    portfolio = filters.NumberFilter(
        field_name="portfolio_id", help_text="Portfolio id (default: the live portfolio)."
    )
    portfolio_path = "portfolio_id"

    def filter_queryset(self, queryset):
        if self.form.cleaned_data.get("portfolio") is None:
            queryset = queryset.filter(
                **{self.portfolio_path: selectors.live_portfolio_id_subquery()}
            )
        return super().filter_queryset(queryset)


class PortfolioCurveFilter(_LivePortfolioDefault):
    class Meta:
        model = PortfolioSnapshot
        fields = ["portfolio", "start", "end"]


class StrategyCurveFilter(_LivePortfolioDefault):
    portfolio = filters.NumberFilter(
        field_name="strategy__portfolio_id",
        help_text="Portfolio id (default: the live portfolio).",
    )
    portfolio_path = "strategy__portfolio_id"
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")

    class Meta:
        model = StrategySnapshot
        fields = ["portfolio", "strategy", "start", "end"]
