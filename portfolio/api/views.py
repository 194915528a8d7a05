"""REST endpoints: read-only views of the portfolio state, and the commands (``<Entity>
<Action>Api``), each a thin edge over one service."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio import models, selectors
from portfolio.api import filters
from portfolio.api.base import CappedLimitOffsetPagination, ReadViewSet
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
    """A strategy and its current stats (``selectors.strategy_stats_list`` gives their
    definitions); the stats are null before the strategy's first snapshot."""

    as_of = serializers.DateField(read_only=True, allow_null=True)
    equity = serializers.FloatField(read_only=True, allow_null=True)
    total_return = serializers.SerializerMethodField()
    daily_return = serializers.FloatField(read_only=True, allow_null=True)
    drawdown = serializers.FloatField(read_only=True, allow_null=True)
    weight = serializers.FloatField(read_only=True, allow_null=True)
    leverage = serializers.FloatField(read_only=True, allow_null=True)
    allocation = serializers.FloatField(read_only=True, allow_null=True)

    def get_total_return(self, obj) -> float | None:
        """Flow-free total return since inception: nav - 1 (null before the first bar)."""
        return None if getattr(obj, "as_of", None) is None else obj.nav - 1.0

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
            "as_of",
            "equity",
            "total_return",
            "daily_return",
            "drawdown",
            "weight",
            "leverage",
            "allocation",
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
            "detail",
        ]


class PositionSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.name")
    ticker = serializers.CharField(source="instrument.ticker")

    class Meta:
        model = models.Position
        fields = ["id", "strategy", "ticker", "quantity", "avg_entry_price", "entry_date"]


class PortfolioViewSet(ReadViewSet):
    """Portfolios and their configuration. Filter ``is_backtest``."""

    queryset = selectors.portfolio_list()
    serializer_class = PortfolioSerializer
    filterset_class = filters.PortfolioFilter
    pagination_class = CappedLimitOffsetPagination
    ordering = ("id",)
    ordering_fields = ("id", "name")


class StrategyViewSet(ReadViewSet):
    """Strategies with their current stats (one query per page). Filters ``portfolio``,
    ``status``, ``signal_type``."""

    queryset = selectors.strategy_stats_list()
    serializer_class = StrategySerializer
    filterset_class = filters.StrategyFilter
    pagination_class = CappedLimitOffsetPagination
    ordering = ("portfolio_id", "position_order", "id")
    ordering_fields = ("id", "name", "position_order", "portfolio_id", "equity", "drawdown")


class TradeViewSet(ReadViewSet):
    """Every fill, newest first. Filters ``portfolio``, ``strategy`` (name or id),
    ``ticker``, ``side``, ``reason``, ``start``/``end`` (fill date, inclusive)."""

    queryset = selectors.trade_list()
    serializer_class = TradeSerializer
    filterset_class = filters.TradeFilter
    ordering = ("-date", "-id")
    ordering_fields = ("date", "id", "quantity", "price", "value", "cost", "realized_pnl")


class PositionViewSet(ReadViewSet):
    """Open positions per book (``/api/positions/netted/`` nets them by ticker). Filters
    ``portfolio``, ``strategy`` (name or id), ``ticker``."""

    queryset = selectors.position_list()
    serializer_class = PositionSerializer
    filterset_class = filters.PositionFilter
    pagination_class = CappedLimitOffsetPagination
    ordering = ("id",)
    ordering_fields = ("id", "quantity", "avg_entry_price", "entry_date")


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


class RebalanceEventViewSet(ReadViewSet):
    """Rebalance events, newest first. Filters ``portfolio``, ``trigger``, ``start``/``end``."""

    queryset = selectors.rebalance_event_list()
    serializer_class = RebalanceEventSerializer
    filterset_class = filters.RebalanceEventFilter
    pagination_class = CappedLimitOffsetPagination
    ordering = ("-date", "-id")
    ordering_fields = ("date", "id", "capital_moved", "cost")


class ConfigChangeSerializer(serializers.ModelSerializer):
    portfolio = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    # any JSON, null included (a creation has no ``before``): ``{}`` in the schema, not
    # oneOf(any, null), which null matches twice
    before = serializers.JSONField(read_only=True)
    after = serializers.JSONField(read_only=True)

    class Meta:
        model = models.ConfigChange
        fields = [
            "id",
            "at",
            "portfolio",
            "actor",
            "source",
            "object_type",
            "object_repr",
            "field",
            "before",
            "after",
            "bar_date",
            "applies_after",
            "client_ip",
        ]


class ConfigChangeViewSet(ReadViewSet):
    """The audit trail, newest first. Filters ``portfolio``, ``source``, ``object_type``,
    ``field``, ``actor``, ``start``/``end`` (date of ``at``, UTC, inclusive)."""

    queryset = selectors.config_change_list()
    serializer_class = ConfigChangeSerializer
    filterset_class = filters.ConfigChangeFilter
    ordering = ("-at", "-id")
    ordering_fields = ("at", "id")


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

    @extend_schema(
        request=RebalanceInputSerializer,
        responses={202: RebalanceRequestSerializer, 200: RebalanceRequestSerializer},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
    )
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
