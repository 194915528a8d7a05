"""Update now and the run history: ``POST /api/update/``, ``GET /api/runs/[<id>/]``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from operations.runs import update_enqueue
from portfolio.models import UpdateRun


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


class UpdateRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Every update run, newest first (any logged-in user)."""

    queryset = UpdateRun.objects.order_by("-started_at", "-id")
    serializer_class = UpdateRunSerializer


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
