"""Update now and the run history: ``POST /api/update/``, ``GET /api/runs/[<id>/]``."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from operations.runs import update_enqueue
from portfolio.api.base import DateRangeFilterSet, IdFilter, ReadViewSet
from portfolio.models import UpdateRun
from portfolio.selectors import update_run_list


class UpdateRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = UpdateRun
        fields = [
            "id",
            "portfolio",
            "trigger",
            "status",
            "as_of",
            "first_date",
            "last_date",
            "dates_applied",
            "bars_loaded",
            "started_at",
            "finished_at",
            "heartbeat_at",
            "seconds_prices",
            "seconds_engine",
            "seconds_write",
            "error",
        ]


class UpdateRunFilter(DateRangeFilterSet):
    date_field = "started_at"
    portfolio = IdFilter(field_name="portfolio_id", help_text="Portfolio id.")
    status = filters.ChoiceFilter(choices=UpdateRun.Status.choices)
    trigger = filters.CharFilter(help_text="command, manual, schedule, ...")

    class Meta:
        model = UpdateRun
        fields = ["portfolio", "status", "trigger", "start", "end"]


class UpdateRunViewSet(ReadViewSet):
    """Every update run, newest first (any logged-in user). Filters ``portfolio``,
    ``status``, ``trigger``, ``start``/``end`` (date started, UTC, inclusive)."""

    queryset = update_run_list()
    serializer_class = UpdateRunSerializer
    filterset_class = UpdateRunFilter
    ordering = ("-started_at", "-id")
    ordering_fields = ("started_at", "id")


class UpdateQueuedSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class UpdateConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    run = serializers.IntegerField(allow_null=True)


class UpdateNowApi(APIView):
    """Staff only. 202 with the queued run; 409 with the run in flight, queuing nothing."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=None, responses={202: UpdateQueuedSerializer, 409: UpdateConflictSerializer}
    )
    def post(self, request):
        result = update_enqueue(trigger="manual")
        run_id = result.run.pk if result.run else None
        if not result.queued:
            detail = "an update is already queued or running"
            if result.run is not None:
                detail += f" (run {run_id}, {result.run.status})"
            return Response({"detail": detail, "run": run_id}, status=status.HTTP_409_CONFLICT)
        return Response(
            {"run": run_id, "status": result.run.status, "url": f"/api/runs/{run_id}/"},
            status=status.HTTP_202_ACCEPTED,
        )
