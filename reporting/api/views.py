"""Reporting reads: equity curves (portfolio and per strategy) decimated as the charts
are, and positions netted by ticker across books."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response

from portfolio.api.base import ReadViewSet
from portfolio.models import Portfolio, PortfolioSnapshot, StrategySnapshot
from quantsite.api.schema import ErrorSerializer
from reporting import selectors
from reporting.api import filters
from reporting.engine.netting import net_by_ticker


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
            "open_mae",
        ]


class PortfolioCurveViewSet(ReadViewSet):
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
            "max_position_weight",
            "open_mae",
            "status",
        ]


class StrategyCurveViewSet(ReadViewSet):
    """Per-strategy equity curves, by date then strategy. Filters ``portfolio`` (default:
    the live one), ``strategy`` (name or id), ``start``/``end``; ``points`` keeps the
    dates the decimation of the dates x strategies equity frame keeps (every strategy's
    extremes survive; ``points`` must be >= 2 + 2 x strategies)."""

    queryset = selectors.strategy_curve_list()
    serializer_class = StrategyCurveSerializer
    filterset_class = filters.StrategyCurveFilter
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


@extend_schema(
    responses={
        200: NettedPositionSerializer(many=True),
        404: OpenApiResponse(ErrorSerializer, description="No portfolio with that id."),
    }
)
class NettedPositionApi(generics.ListAPIView):
    """``GET /api/positions/netted/``: the portfolio's open positions netted by ticker,
    largest |net| first, each with the books behind it (4 queries whatever the size).
    ``portfolio``: its id (default: the live portfolio; an unknown id is a 404, as for
    the portfolio itself)."""

    serializer_class = NettedPositionSerializer
    filter_backends = ReadViewSet.filter_backends[:2]  # strict parameters, django-filter
    filterset_class = filters.NettedPortfolioFilter
    renderer_classes = ReadViewSet.renderer_classes
    pagination_class = None
    queryset = Portfolio.objects.order_by("id")

    def list(self, request, *args, **kwargs):
        portfolio = self.filter_queryset(self.get_queryset()).first()
        if portfolio is None:
            if "portfolio" in request.query_params:
                raise Http404("no such portfolio")
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
        return Response(self.get_serializer(rows, many=True).data)


def _finite(x: float) -> float | None:
    return None if x != x else float(x)
