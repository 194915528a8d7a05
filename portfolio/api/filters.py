"""FilterSets of the portfolio reads (django-filter). Every date range is ``start`` /
``end`` (ISO, inclusive); a strategy is given by name or id."""

from __future__ import annotations

from django_filters import rest_framework as filters

from portfolio import models
from portfolio.api.base import DateRangeFilterSet, IdFilter, NameOrIdFilter


class PortfolioFilter(filters.FilterSet):
    is_backtest = filters.BooleanFilter(help_text="true: backtests only; false: live only.")

    class Meta:
        model = models.Portfolio
        fields = ["is_backtest"]


class StrategyFilter(filters.FilterSet):
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    status = filters.ChoiceFilter(choices=models.Strategy.Status.choices)
    signal_type = filters.CharFilter()

    class Meta:
        model = models.Strategy
        fields = ["portfolio", "status", "signal_type"]


class TradeFilter(DateRangeFilterSet):
    portfolio = IdFilter(field_name="strategy__portfolio_id", help_text="Portfolio id.")
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")
    ticker = filters.CharFilter(field_name="instrument__ticker", lookup_expr="iexact")
    side = filters.ChoiceFilter(choices=models.Trade.Side.choices)
    reason = filters.ChoiceFilter(choices=models.Trade.Reason.choices)

    class Meta:
        model = models.Trade
        fields = ["portfolio", "strategy", "ticker", "side", "reason", "start", "end"]


class PositionFilter(filters.FilterSet):
    portfolio = IdFilter(field_name="strategy__portfolio_id", help_text="Portfolio id.")
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")
    ticker = filters.CharFilter(field_name="instrument__ticker", lookup_expr="iexact")

    class Meta:
        model = models.Position
        fields = ["portfolio", "strategy", "ticker"]


class RebalanceEventFilter(DateRangeFilterSet):
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    trigger = filters.ChoiceFilter(choices=models.RebalanceEvent.Trigger.choices)

    class Meta:
        model = models.RebalanceEvent
        fields = ["portfolio", "trigger", "start", "end"]


class ConfigChangeFilter(DateRangeFilterSet):
    date_field = "at"
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    source = filters.CharFilter(help_text="yaml, page, admin, api, risk.")
    object_type = filters.CharFilter()
    field = filters.CharFilter()
    actor = filters.CharFilter()

    class Meta:
        model = models.ConfigChange
        fields = ["portfolio", "source", "object_type", "field", "actor", "start", "end"]


class PendingOrderFilter(DateRangeFilterSet):
    """Trade approval: ``start``/``end`` on the decision's date."""

    date_field = "decided_on"
    portfolio = IdFilter(field_name="strategy__portfolio_id", help_text="Portfolio id.")
    strategy = NameOrIdFilter(field_name="strategy", help_text="Strategy name or id.")
    status = filters.ChoiceFilter(choices=models.PendingOrder.Status.choices)

    class Meta:
        model = models.PendingOrder
        fields = ["portfolio", "strategy", "status", "start", "end"]
