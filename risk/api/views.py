"""Risk reads: violations, the risk measures of every close, and the alert outbox (staff)."""

from __future__ import annotations

from rest_framework import permissions, serializers

from portfolio.api.base import ReadViewSet
from portfolio.models import ConfigChange, PortfolioSnapshot
from risk import models, selectors
from risk.api import filters


class ReviewChangeSerializer(serializers.ModelSerializer):
    """One configuration change a review linked (an audit row)."""

    class Meta:
        model = ConfigChange
        fields = ["id", "at", "actor", "source", "object_type", "object_repr", "field"]
        fields += ["before", "after"]
        read_only_fields = fields


class ReviewSerializer(serializers.Serializer):
    """The post-violation review: ``reviewed`` false (and the rest null/empty) until an
    operator reviews or acknowledges it."""

    reviewed = serializers.BooleanField()
    by = serializers.CharField(source="acknowledged_by", allow_null=True)
    at = serializers.DateTimeField(source="acknowledged_at", allow_null=True)
    note = serializers.CharField(source="acknowledged_note")
    changes = ReviewChangeSerializer(source="review_changes", many=True)


class ViolationSerializer(serializers.ModelSerializer):
    limit = serializers.CharField(source="limit.name")
    scope = serializers.CharField(source="limit.scope")
    metric = serializers.CharField(source="limit.metric")
    strategy = serializers.CharField(source="strategy.name", allow_null=True, default=None)
    ticker = serializers.CharField(source="instrument.ticker", allow_null=True, default=None)
    review = ReviewSerializer(source="*", read_only=True)

    class Meta:
        model = models.Violation
        fields = [
            "id",
            "portfolio",
            "date",
            "limit",
            "scope",
            "metric",
            "severity",
            "strategy",
            "ticker",
            "group",
            "value",
            "threshold",
            "action_taken",
            "status",
            "message",
            "opened_at",
            "resolved_on",
            "resolved_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledged_note",
            "review",
        ]


class ViolationViewSet(ReadViewSet):
    """Limit breaches, newest first, each with its ``review`` (who, when, the note and the
    linked configuration changes). Filters ``portfolio``, ``severity``, ``status``,
    ``scope`` (the limit's), ``strategy`` (name or id), ``ticker``, ``limit`` (name),
    ``reviewed`` (true/false), ``start``/``end`` (bar date of the breach, inclusive)."""

    queryset = selectors.violation_list()
    serializer_class = ViolationSerializer
    filterset_class = filters.ViolationFilter
    ordering = ("-date", "-id")
    ordering_fields = ("date", "id", "value")


class RiskSnapshotSerializer(serializers.ModelSerializer):
    """Risk measures of one close as the risk manager stored them (null before its window
    fills). Each measure's formula and convention is written once, in its function's
    docstring in risk/engine/metrics.py (and shown on the risk page); ``risk`` holds the
    per-close detail (correlation matrix, risk contributions, parametric VaR/CVaR,
    per-ticker net concentration)."""

    class Meta:
        model = PortfolioSnapshot
        fields = [f.removesuffix("_id") for f in selectors.RISK_SNAPSHOT_FIELDS]


class RiskSnapshotViewSet(ReadViewSet):
    """Every stored risk measure per close, newest first. Filters ``portfolio``,
    ``start``/``end`` (bar date, inclusive)."""

    queryset = selectors.risk_snapshot_list()
    serializer_class = RiskSnapshotSerializer
    filterset_class = filters.RiskSnapshotFilter
    ordering = ("-date", "-id")
    ordering_fields = ("date", "id")


class AlertDeliverySerializer(serializers.ModelSerializer):
    channel = serializers.CharField(source="channel.name")
    kind = serializers.CharField(source="channel.kind")

    class Meta:
        model = models.AlertDelivery
        fields = [
            "id",
            "channel",
            "kind",
            "violation",
            "event",
            "subject",
            "body",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
            "sent_at",
        ]


class AlertDeliveryViewSet(ReadViewSet):
    """The alert outbox, newest first (staff only: bodies may carry operator detail).
    Filters ``status``, ``channel`` (name), ``kind``, ``violation``, ``portfolio``,
    ``start``/``end`` (date created, UTC, inclusive)."""

    permission_classes = [permissions.IsAdminUser]
    queryset = selectors.alert_delivery_list()
    serializer_class = AlertDeliverySerializer
    filterset_class = filters.AlertDeliveryFilter
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id", "attempts")
