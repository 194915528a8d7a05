"""Read-only REST endpoints over the portfolio state. Commands come with later issues."""

from __future__ import annotations

from rest_framework import serializers, viewsets

from portfolio import models


class PortfolioSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.Portfolio
        fields = [
            "id",
            "name",
            "initial_capital",
            "leverage_target",
            "allocation_method",
            "rebalance_trigger",
            "rebalance_frequency",
            "rebalance_threshold",
            "commission_bps",
            "slippage_bps",
            "whole_shares",
            "is_backtest",
            "last_applied_date",
        ]


class StrategySerializer(serializers.ModelSerializer):
    class Meta:
        model = models.Strategy
        fields = [
            "id",
            "portfolio",
            "name",
            "signal_type",
            "parameters",
            "target_allocation",
            "status",
            "risk_config",
            "cash",
            "realized_pnl",
        ]


class TradeSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.name")
    ticker = serializers.CharField(source="instrument.ticker")

    class Meta:
        model = models.Trade
        fields = [
            "id",
            "strategy",
            "ticker",
            "date",
            "side",
            "quantity",
            "price",
            "value",
            "cost",
            "realized_pnl",
            "reason",
        ]


class PositionSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.name")
    ticker = serializers.CharField(source="instrument.ticker")

    class Meta:
        model = models.Position
        fields = ["id", "strategy", "ticker", "quantity", "avg_entry_price", "entry_date"]


class PortfolioViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = models.Portfolio.objects.all()
    serializer_class = PortfolioSerializer


class StrategyViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = models.Strategy.objects.all()
    serializer_class = StrategySerializer


class TradeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = models.Trade.objects.select_related("strategy", "instrument").order_by(
        "-date", "-id"
    )
    serializer_class = TradeSerializer


class PositionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = models.Position.objects.select_related("strategy", "instrument")
    serializer_class = PositionSerializer
