"""Scenario results (reads) and on-demand runs (a command).

* ``GET /api/scenarios/``: every stored result, newest first, without its ``result``
  body (filters ``portfolio``, ``kind``, ``status``, ``trigger``, ``name``, ``start`` /
  ``end`` on the as-of bar); ``GET /api/scenarios/<id>/`` with it.
* ``POST /api/scenarios/run/`` ``{"kind": "stress", "params": {...}, "portfolio": id}``
  runs one scenario now and answers the stored run (201). ``params`` by kind: stress
  ``window`` ("START:END") or ``window_id``, ``mode`` (hold | run); shock ``shock_id`` or
  ``market``, ``sectors``, ``tickers`` (fractions); montecarlo ``paths``, ``horizon``,
  ``block``, ``seed``; regime ``window``; walkforward ``strategy``, ``lookbacks``,
  ``in_sample``, ``out_of_sample``. A refused value answers 400 ``{"<field>": ["<rule>"]}``
  and stores nothing; a scenario that could not be computed is stored as failed, with
  its reason, and answered 201 with ``status: failed``.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from portfolio.api.base import ReadViewSet
from portfolio.models import Portfolio
from portfolio.selectors import live_portfolio_queryset
from quantsite.api.idempotency import IDEMPOTENCY_KEY, idempotent_command
from quantsite.api.schema import ErrorSerializer
from risk import models, selectors
from risk.api import filters
from risk.services.scenario_requests import ScenarioRequestError, scenario_request

FIELDS = ["id", "portfolio", "kind", "name", "params", "as_of", "state_version", "status"]
FIELDS += ["error", "trigger", "seconds", "created_at"]


class ScenarioRunListSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ScenarioRun
        fields = FIELDS
        read_only_fields = fields


class ScenarioRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = models.ScenarioRun
        fields = [*FIELDS, "result"]
        read_only_fields = fields


class ScenarioRunViewSet(ReadViewSet):
    """Stored scenario results (module docstring)."""

    queryset = selectors.scenario_run_list()
    serializer_class = ScenarioRunSerializer
    filterset_class = filters.ScenarioRunFilter
    ordering = ("-created_at", "-id")
    ordering_fields = ("created_at", "id")

    def get_queryset(self):
        qs = super().get_queryset()
        return qs.defer("result") if self.action == "list" else qs

    def get_serializer_class(self):
        return ScenarioRunListSerializer if self.action == "list" else ScenarioRunSerializer


class ScenarioRunInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=models.ScenarioRun.Kind.choices)
    params = serializers.DictField(required=False, default=dict)
    portfolio = serializers.IntegerField(
        required=False, min_value=1, help_text="Portfolio id (default: the live portfolio)."
    )


class ScenarioRunApi(APIView):
    """Run one scenario now (module docstring)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=ScenarioRunInputSerializer,
        responses={201: ScenarioRunSerializer, 404: ErrorSerializer, 422: ErrorSerializer},
        parameters=[IDEMPOTENCY_KEY],
    )
    @idempotent_command
    def post(self, request):
        data = ScenarioRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pk = data.validated_data.get("portfolio")
        if pk is not None:
            portfolio = get_object_or_404(Portfolio, pk=pk)
        else:
            portfolio = live_portfolio_queryset().first()
            if portfolio is None:
                return Response({"portfolio": ["there is no live portfolio"]}, status=400)
        try:
            run = scenario_request(
                portfolio=portfolio,
                kind=data.validated_data["kind"],
                params=data.validated_data["params"],
                trigger=models.ScenarioRun.Trigger.API,
            )
        except ScenarioRequestError as exc:
            return Response({exc.field: [exc.rule]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(ScenarioRunSerializer(run).data, status=status.HTTP_201_CREATED)
