"""REST endpoints: read-only views of the portfolio state, and the commands (``<Entity>
<Action>Api``), each a thin edge over one service."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio import models
from portfolio.engine.errors import ConfigError
from portfolio.services.controls import Origin
from portfolio.services.rebalance import rebalance_request


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
            "rebalance_method",
            "rebalance_trading_day",
            "allocation_params",
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
            "current_allocation",
            "history_days",
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


class RebalanceEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.RebalanceEvent
        fields = [
            "id",
            "portfolio",
            "date",
            "trigger",
            "method",
            "allocation_method",
            "weights_before",
            "weights_after",
            "allocations_before",
            "allocations_after",
            "capital_moved",
            "trades_count",
            "cost",
            "notes",
            "stats",
            "request_key",
        ]


class RebalanceEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = models.RebalanceEvent.objects.order_by("-date", "-id")
    serializer_class = RebalanceEventSerializer


class RebalanceRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.RebalanceRequest
        fields = [
            "id",
            "portfolio",
            "request_key",
            "method",
            "requested_at",
            "requested_by",
            "after_date",
            "status",
            "event",
        ]


class RebalanceInputSerializer(serializers.Serializer):
    request_key = serializers.CharField(required=False, allow_blank=True, max_length=100)
    method = serializers.ChoiceField(
        choices=["", *models.Portfolio.RebalanceMethod.values], required=False, default=""
    )


class PortfolioRebalanceApi(APIView):
    """POST: rebalance this portfolio at the next bar. Staff only. Idempotent per
    ``request_key`` (body) or ``Idempotency-Key`` (header): 202 when recorded, 200 with the
    stored request when the key was seen before."""

    permission_classes = [permissions.IsAdminUser]

    def post(self, request, pk: int):
        portfolio = get_object_or_404(models.Portfolio, pk=pk)
        data = RebalanceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = data.validated_data.get("request_key") or request.headers.get("Idempotency-Key")
        try:
            result = rebalance_request(
                portfolio=portfolio,
                request_key=key,
                method=data.validated_data.get("method", ""),
                origin=Origin.of_request(request, source="api"),
            )
        except ConfigError as exc:
            return Response({exc.where: [exc.rule]}, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
        return Response(RebalanceRequestSerializer(result.request).data, status=code)
