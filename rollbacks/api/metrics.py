"""GET /api/v1/metrics/: rollback rate, time to rollback, reasons by trigger and cost over ?since=&until=."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rollbacks.metrics import may_read_metrics, parse_period, rollback_metrics


class ReadsMetrics(BasePermission):
    message = "Metrics are for auditors and for people who sign off rollbacks."

    def has_permission(self, request: Request, view: Any) -> bool:
        return may_read_metrics(request.user)


class MetricsView(APIView):
    permission_classes = [IsAuthenticated, ReadsMetrics]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.STR, description="ISO 8601 date or date-time; default until - 30 days"
            ),
            OpenApiParameter(
                "until", OpenApiTypes.STR, description="ISO 8601 date (whole day) or date-time; default now"
            ),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        period = parse_period(request.query_params.get("since"), request.query_params.get("until"))
        return Response(rollback_metrics(period))
