"""REST commands (staff only): each is a thin edge over the same service as the
configuration page and the admin, records the same audit rows (source ``api``) and
answers with the resulting state.

* ``POST /api/strategies/<id>/pause/`` and ``.../resume/``;
* ``POST /api/portfolios/<id>/allocations/`` ``{"allocations": {name: weight}}`` (the
  whole set must sum to the leverage target; names not given keep theirs);
* ``POST /api/limits/<id>/`` ``{"threshold": x, "enabled": bool}``;
* ``POST /api/violations/<id>/acknowledge/`` ``{"note": "..."}``;
* ``POST /api/violations/<id>/review/`` ``{"note": "...", "changes": [config change ids]}``
  (a second review amends the first: ``changed`` is false).

A refused value answers 400 ``{"<field>": ["<rule>"]}`` (the API's one error shape) and
changes nothing. Every command accepts an ``Idempotency-Key`` header (drf-idempotency,
database backend): the same key with the same request replays the first answer without
running the command again; the same key with another request is a 422.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.fields import empty
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.api.views import StrategySerializer
from portfolio.engine.errors import ConfigError
from portfolio.models import Portfolio, Strategy
from portfolio.services.controls import Origin, strategy_allocations_set, strategy_pause
from quantsite.api.idempotency import IDEMPOTENCY_KEY, idempotent_command
from quantsite.api.schema import ErrorSerializer
from risk.api.views import ViolationSerializer
from risk.models import RiskLimit, Violation
from risk.selectors import violation_list
from risk.services import strategy_resume
from risk.services.controls import risk_limit_update, violation_acknowledge, violation_review


def command_schema(request, result):
    """The OpenAPI description every command shares (its body, its answer, a refusal, a
    reused ``Idempotency-Key``)."""
    return extend_schema(
        request=request,
        responses={200: result, 409: ErrorSerializer, 422: ErrorSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )


def refused(exc: ConfigError) -> Response:
    """A value the rules refuse: 400 in the API's one error shape (the field mapped to
    its messages), nothing changed."""
    return Response({exc.where: [exc.rule]}, status=status.HTTP_400_BAD_REQUEST)


class CommandApi(APIView):
    permission_classes = [permissions.IsAdminUser]

    @staticmethod
    def origin(request) -> Origin:
        return Origin.of_request(request, source="api")


class StrategyCommandResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when it was already in that state.")
    strategy = StrategySerializer()


class StrategyPauseApi(CommandApi):
    """Pause a strategy: no orders from the next bar (its holdings are kept)."""

    @command_schema(None, StrategyCommandResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        strategy = get_object_or_404(Strategy, pk=pk)
        changed = strategy_pause(strategy=strategy, origin=self.origin(request))
        strategy.refresh_from_db()
        return Response({"changed": changed, "strategy": StrategySerializer(strategy).data})


class StrategyResumeApi(CommandApi):
    """Resume a paused strategy from the next bar (a risk pause is overridden, its
    violation stays open); a retired strategy is never resumed (``changed`` false)."""

    @command_schema(None, StrategyCommandResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        strategy = get_object_or_404(Strategy, pk=pk)
        o = self.origin(request)
        changed = strategy_resume(strategy=strategy, actor=o.actor, source=o.source, ip=o.ip)
        strategy.refresh_from_db()
        return Response({"changed": changed, "strategy": StrategySerializer(strategy).data})


class AllocationsInputSerializer(serializers.Serializer):
    allocations = serializers.DictField(child=serializers.FloatField(), allow_empty=False)


class AllocationsResultSerializer(serializers.Serializer):
    changed = serializers.ListField(child=serializers.CharField())
    strategies = StrategySerializer(many=True)


class PortfolioAllocationsApi(CommandApi):
    """Set the static target allocations as one set (from the next rebalance)."""

    @command_schema(AllocationsInputSerializer, AllocationsResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        portfolio = get_object_or_404(Portfolio, pk=pk)
        data = AllocationsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            changed = strategy_allocations_set(
                portfolio=portfolio,
                allocations=data.validated_data["allocations"],
                origin=self.origin(request),
            )
        except ConfigError as exc:
            return refused(exc)
        strategies = portfolio.strategies.order_by("position_order", "id")
        return Response(
            {"changed": changed, "strategies": StrategySerializer(strategies, many=True).data}
        )


class LimitSerializer(serializers.ModelSerializer):
    class Meta:
        model = RiskLimit
        fields = [
            "id",
            "portfolio",
            "name",
            "scope",
            "metric",
            "threshold",
            "severity",
            "action",
            "enabled",
        ]
        read_only_fields = fields


class OptionalBooleanField(serializers.BooleanField):
    """A flag that may be left out, in JSON and in a form post alike. DRF reads a checkbox
    missing from a form post as False (``default_empty_html``), so a form that sent only a
    threshold turned the limit off."""

    default_empty_html = empty


class LimitInputSerializer(serializers.Serializer):
    threshold = serializers.FloatField(required=False)
    enabled = OptionalBooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("give threshold and/or enabled")
        return attrs


class LimitResultSerializer(serializers.Serializer):
    changed = serializers.ListField(child=serializers.CharField())
    limit = LimitSerializer()


class RiskLimitEditApi(CommandApi):
    """Edit a limit's threshold or enabled flag, checked by the risk YAML's rules."""

    @command_schema(LimitInputSerializer, LimitResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        limit = get_object_or_404(RiskLimit, pk=pk)
        data = LimitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            changed = risk_limit_update(
                limit=limit, values=dict(data.validated_data), origin=self.origin(request)
            )
        except ConfigError as exc:
            return refused(exc)
        limit.refresh_from_db()
        return Response({"changed": changed, "limit": LimitSerializer(limit).data})


class AcknowledgeInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000)


class AcknowledgedSerializer(serializers.ModelSerializer):
    class Meta:
        model = Violation
        fields = ["id", "date", "status", "acknowledged_at", "acknowledged_by", "acknowledged_note"]
        read_only_fields = fields


class AcknowledgeResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when it was acknowledged already.")
    violation = AcknowledgedSerializer()


class ViolationAcknowledgeApi(CommandApi):
    """Acknowledge a violation with a note (its status stays the risk manager's)."""

    @command_schema(AcknowledgeInputSerializer, AcknowledgeResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        violation = get_object_or_404(Violation, pk=pk)
        data = AcknowledgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            changed = violation_acknowledge(
                violation=violation, note=data.validated_data["note"], origin=self.origin(request)
            )
        except ConfigError as exc:
            return refused(exc)
        violation.refresh_from_db()
        return Response({"changed": changed, "violation": AcknowledgedSerializer(violation).data})


class ReviewInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000)
    # a list checked by the service (a ListField's per-item errors are keyed by index,
    # which the API's one error shape, {"field": [rule]}, does not have)
    changes = serializers.JSONField(
        required=False,
        default=list,
        help_text="Ids of the portfolio's configuration changes (GET /api/audit/) made at or "
        "after the violation opened that answer it.",
    )


class ReviewResultSerializer(serializers.Serializer):
    changed = serializers.BooleanField(help_text="False when it amended an earlier review.")
    violation = ViolationSerializer()


class ViolationReviewApi(CommandApi):
    """Review a violation: acknowledge it with a note and link the configuration changes
    that answer it; a change of another portfolio, from before the violation opened, the
    risk manager's own or unknown is refused naming ``changes``."""

    @command_schema(ReviewInputSerializer, ReviewResultSerializer)
    @idempotent_command
    def post(self, request, pk: int):
        violation = get_object_or_404(Violation, pk=pk)
        data = ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            changed = violation_review(
                violation=violation,
                note=data.validated_data["note"],
                change_ids=data.validated_data["changes"],
                origin=self.origin(request),
            )
        except ConfigError as exc:
            return refused(exc)
        violation = violation_list().get(pk=pk)
        return Response({"changed": changed, "violation": ViolationSerializer(violation).data})
