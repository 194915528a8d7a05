"""Reporting reads: equity curves (portfolio and per strategy) decimated as the charts
are, and positions netted by ticker across books."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import exceptions, generics, serializers
from rest_framework.response import Response

from portfolio.api.base import ReadViewSet, StrictQueryParamsFilter
from portfolio.models import Portfolio, PortfolioSnapshot, StrategySnapshot
from reporting import selectors
from reporting.api import filters
from reporting.engine.netting import net_by_ticker

MAX_POINTS = 5000


class PointsMixin:
    """``?points=N`` (integer, 2 + 2 x series <= N <= 5000): only the dates the charts'
    decimation keeps (``selectors.curve_decimated``); absent, every date."""

    extra_query_params = ("points",)
    decimate_by: str | None = None

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        raw = self.request.query_params.get("points")
        if raw is None:
            return queryset
        try:
            points = int(raw)
        except ValueError:
            points = 0
        if not 4 <= points <= MAX_POINTS:
            raise exceptions.ValidationError(
                {"points": [f"must be an integer between 4 and {MAX_POINTS}"]}
            )
        try:
            return selectors.curve_decimated(queryset=queryset, points=points, by=self.decimate_by)
        except ValueError as exc:
            raise exceptions.ValidationError({"points": [str(exc)]}) from None


class PortfolioCurveSerializer(serializers.ModelSerializer):
    class Meta:
        model = PortfolioSnapshot
        fields = [
            "date",
            "portfolio",
            "equity",
            "cash",
            "daily_return",
            "drawdown",
            "leverage",
            "gross_exposure",
            "net_exposure",
        ]


class PortfolioCurveViewSet(PointsMixin, ReadViewSet):
    """The portfolio equity curve, oldest first. Filters ``portfolio`` (default: the live
    one), ``start``/``end`` (inclusive); ``points`` decimates keeping the extremes."""

    queryset = selectors.portfolio_curve_list()
    serializer_class = PortfolioCurveSerializer
    filterset_class = filters.PortfolioCurveFilter
    ordering = ("date", "id")
    ordering_fields = ("date", "id")


class StrategyCurveSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.name")
    strategy_id = serializers.IntegerField()

    class Meta:
        model = StrategySnapshot
        fields = [
            "date",
            "strategy",
            "strategy_id",
            "equity",
            "daily_return",
            "drawdown",
            "weight",
            "allocation",
            "leverage",
            "volatility",
            "status",
        ]


class StrategyCurveViewSet(PointsMixin, ReadViewSet):
    """Per-strategy equity curves, by date then strategy. Filters ``portfolio`` (default:
    the live one), ``strategy`` (name or id), ``start``/``end``; ``points`` keeps the
    dates the decimation of the dates x strategies equity frame keeps (every strategy's
    extremes survive; ``points`` must be >= 2 + 2 x strategies)."""

    queryset = selectors.strategy_curve_list()
    serializer_class = StrategyCurveSerializer
    filterset_class = filters.StrategyCurveFilter
    decimate_by = "strategy_id"
    ordering = ("date", "strategy_id", "id")
    ordering_fields = ("date", "id")


class NettedBookSerializer(serializers.Serializer):
    strategy = serializers.CharField()
    quantity = serializers.FloatField()
    value = serializers.FloatField()


class NettedPositionSerializer(serializers.Serializer):
    """One ticker netted across books (``reporting.engine.netting.net_by_ticker`` defines
    net, gross and books); ``weight`` = net / portfolio equity; ``close`` the last close
    on or before the portfolio's last applied bar."""

    ticker = serializers.CharField()
    sector = serializers.CharField()
    close = serializers.FloatField(allow_null=True)
    net_quantity = serializers.FloatField()
    net = serializers.FloatField()
    gross = serializers.FloatField()
    weight = serializers.FloatField(allow_null=True)
    unrealized_pnl = serializers.FloatField()
    books = NettedBookSerializer(many=True)


class NettedQuerySerializer(serializers.Serializer):
    portfolio = serializers.IntegerField(
        required=False, min_value=1, help_text="Portfolio id (default: the live portfolio)."
    )


class NettedPositionApi(generics.GenericAPIView):
    """``GET /api/positions/netted/``: the portfolio's open positions netted by ticker,
    largest |net| first, each with the books behind it (4 queries whatever the size)."""

    serializer_class = NettedPositionSerializer
    filter_backends = [StrictQueryParamsFilter]
    renderer_classes = ReadViewSet.renderer_classes
    pagination_class = None
    extra_query_params = ("portfolio",)

    def get_queryset(self):
        return Portfolio.objects.none()

    def get(self, request):
        self.filter_queryset(self.get_queryset())
        query = NettedQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        pk = query.validated_data.get("portfolio")
        portfolio = get_object_or_404(Portfolio, pk=pk) if pk else selectors.portfolio_live_get()
        if portfolio is None:
            return Response([])
        positions = selectors.position_frame(portfolio=portfolio, as_of=portfolio.last_applied_date)
        rows = []
        equity = portfolio.last_equity
        for ticker, row in net_by_ticker(positions).iterrows():
            held = positions[positions["ticker"] == ticker]
            rows.append(
                {
                    "ticker": ticker,
                    "sector": held["sector"].iloc[0],
                    "close": _finite(held["close"].iloc[0]),
                    "net_quantity": row["net_quantity"],
                    "net": row["net"],
                    "gross": row["gross"],
                    "weight": row["net"] / equity if equity else None,
                    "unrealized_pnl": row["unrealized_pnl"],
                    "books": [
                        {"strategy": b.strategy, "quantity": b.quantity, "value": b.value}
                        for b in held.itertuples()
                    ],
                }
            )
        return Response(NettedPositionSerializer(rows, many=True).data)


def _finite(x: float) -> float | None:
    return None if x != x else float(x)
