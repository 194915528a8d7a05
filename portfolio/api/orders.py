"""REST endpoints of trade approval: the decisions held for approval (read, any logged-in
user) and their review (``POST .../approve/`` and ``.../reject/``, staff only), through
the same service as the strategy page and the admin (``portfolio.services.approvals``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from portfolio import models
from portfolio.api.base import ReadViewSet
from portfolio.api.filters import PendingOrderFilter
from portfolio.engine.errors import ConfigError
from portfolio.services.approvals import order_review
from portfolio.services.controls import Origin
from quantsite.api.idempotency import IDEMPOTENCY_KEY, idempotent_command
from quantsite.api.schema import ErrorSerializer


class PendingOrderSerializer(serializers.ModelSerializer):
    strategy = serializers.CharField(source="strategy.name")
    portfolio = serializers.IntegerField(source="strategy.portfolio_id")

    class Meta:
        model = models.PendingOrder
        fields = [
            "id",
            "portfolio",
            "strategy",
            "decided_on",
            "targets",
            "orders",
            "status",
            "resolved_on",
            "cause",
            "fills_count",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields


class OrderReviewSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


_REVIEW_SCHEMA = extend_schema(
    request=OrderReviewSerializer,
    responses={200: PendingOrderSerializer, 409: ErrorSerializer, 422: ErrorSerializer},
    parameters=[IDEMPOTENCY_KEY],
)


class PendingOrderViewSet(ReadViewSet):
    """Decisions of approval-gated strategies, newest first. Filters ``portfolio``,
    ``strategy`` (name or id), ``status`` (``pending``: awaiting a review), ``start``/
    ``end`` (decision date). A review answers 200 with the order, or 409 with the reason
    when the order no longer awaits one (reviewed already, or expired at the next bar)."""

    queryset = models.PendingOrder.objects.select_related("strategy")
    serializer_class = PendingOrderSerializer
    filterset_class = PendingOrderFilter
    ordering = ("-decided_on", "-id")
    ordering_fields = ("decided_on", "id")

    def _review(self, request, pk, decision: str) -> Response:
        data = OrderReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = self.get_object()
        try:
            order = order_review(
                order_id=order.pk,
                decision=decision,
                origin=Origin.of_request(request, source="api"),
                note=data.validated_data["note"],
            )
        except ConfigError as exc:
            return Response({"detail": f"{exc.where}: {exc.rule}"}, status=status.HTTP_409_CONFLICT)
        return Response(PendingOrderSerializer(order).data)

    @_REVIEW_SCHEMA
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    @idempotent_command
    def approve(self, request, pk=None):
        """Approve: the orders fill at the next bar."""
        return self._review(request, pk, "approve")

    @_REVIEW_SCHEMA
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAdminUser])
    @idempotent_command
    def reject(self, request, pk=None):
        """Reject: the orders never fill."""
        return self._review(request, pk, "reject")
