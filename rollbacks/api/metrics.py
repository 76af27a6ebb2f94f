"""GET /api/v1/metrics/: rollback rate, time to rollback, reasons by trigger and cost over ?since=&until=; and the
figures people act on: time to decision, waiting past a reminder, windows closed while waiting, the weekly trend by
trigger, reviewers' self-flagged approvals, signers' rejections. The serializers below only describe the answer
for the schema: rollbacks.metrics computes it."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rollbacks.metrics import may_read_metrics, parse_period, rollback_metrics


class ReadsMetrics(BasePermission):
    message = "Metrics are for auditors and for people who sign off rollbacks."

    def has_permission(self, request: Request, view: Any) -> bool:
        return may_read_metrics(request.user)


class MetricsRateByActionType(serializers.Serializer[Any]):
    action_type = serializers.CharField()
    recorded = serializers.IntegerField()
    rolled_back = serializers.IntegerField()
    rate = serializers.FloatField()


class MetricsRateByApprover(serializers.Serializer[Any]):
    approved_by = serializers.CharField()
    recorded = serializers.IntegerField()
    rolled_back = serializers.IntegerField()
    rate = serializers.FloatField()


class MetricsRollbackRate(serializers.Serializer[Any]):
    by_action_type = MetricsRateByActionType(many=True)
    by_approver = MetricsRateByApprover(many=True)


class MetricsTimeToRollback(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)
    max_seconds = serializers.FloatField(allow_null=True)


class MetricsReason(serializers.Serializer[Any]):
    reason = serializers.CharField()
    count = serializers.IntegerField()


class MetricsReasonsOfTrigger(serializers.Serializer[Any]):
    trigger = serializers.CharField()
    rollbacks = serializers.IntegerField()
    top_reasons = MetricsReason(many=True)


class MetricsAmountInCurrency(serializers.Serializer[Any]):
    currency = serializers.CharField(allow_null=True, help_text="The payload's `currency`; null where it names none.")
    amount = serializers.CharField(help_text="A decimal as text, at least two decimals.")
    steps = serializers.IntegerField()


class MetricsCost(serializers.Serializer[Any]):
    amount_reversed = serializers.CharField(help_text="Over every currency at once: read the next field instead.")
    amount_reversed_by_currency = MetricsAmountInCurrency(many=True)
    steps_reversed = serializers.IntegerField()
    compensations = serializers.IntegerField()
    manual_remediations = serializers.IntegerField()
    manual_remediations_done = serializers.IntegerField()


class MetricsTimeToDecision(serializers.Serializer[Any]):
    trigger = serializers.CharField()
    count = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class MetricsWaitingOfTrigger(serializers.Serializer[Any]):
    trigger = serializers.CharField()
    remind_after_seconds = serializers.FloatField(allow_null=True)
    pending = serializers.IntegerField()
    past_reminder = serializers.IntegerField()


class MetricsWaiting(serializers.Serializer[Any]):
    as_of = serializers.DateTimeField()
    pending = serializers.IntegerField()
    past_reminder = serializers.IntegerField()
    by_trigger = MetricsWaitingOfTrigger(many=True)


class MetricsClosedOfTrigger(serializers.Serializer[Any]):
    trigger = serializers.CharField()
    count = serializers.IntegerField()
    still_pending = serializers.IntegerField()


class MetricsWindowsClosed(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    still_pending = serializers.IntegerField()
    by_trigger = MetricsClosedOfTrigger(many=True)


class MetricsTrendOfTrigger(serializers.Serializer[Any]):
    trigger = serializers.CharField()
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="One per week, in `weeks` order.")


class MetricsWeeklyTrend(serializers.Serializer[Any]):
    weeks = serializers.ListField(child=serializers.DateField(), help_text="The Monday (UTC) of each week.")
    triggers = MetricsTrendOfTrigger(many=True)


class MetricsSelfFlagWeek(serializers.Serializer[Any]):
    week = serializers.DateField()
    approvals = serializers.IntegerField()
    self_flagged = serializers.IntegerField()
    share = serializers.FloatField()


class MetricsReviewerSelfFlags(serializers.Serializer[Any]):
    reviewer = serializers.CharField()
    approvals = serializers.IntegerField()
    self_flagged = serializers.IntegerField()
    share = serializers.FloatField()
    weekly = MetricsSelfFlagWeek(many=True)


class MetricsDecisions(serializers.Serializer[Any]):
    decisions = serializers.IntegerField()
    approvals = serializers.IntegerField()
    rejections = serializers.IntegerField()
    reject_rate = serializers.FloatField()
    possible_rubber_stamp = serializers.BooleanField()


class MetricsDecisionsOfTrigger(MetricsDecisions):
    trigger = serializers.CharField()


class MetricsSignerDecisions(MetricsDecisions):
    signer = serializers.CharField()
    by_trigger = MetricsDecisionsOfTrigger(many=True)


class MetricsSerializer(serializers.Serializer[Any]):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    rollback_rate = MetricsRollbackRate()
    time_to_rollback = MetricsTimeToRollback()
    reasons_by_trigger = MetricsReasonsOfTrigger(many=True)
    cost = MetricsCost()
    time_to_decision = MetricsTimeToDecision(many=True)
    waiting = MetricsWaiting()
    windows_closed_while_waiting = MetricsWindowsClosed()
    weekly_rollbacks_by_trigger = MetricsWeeklyTrend()
    reviewer_self_flags = MetricsReviewerSelfFlags(many=True)
    signer_decisions = MetricsSignerDecisions(many=True)
    rubber_stamp_min_decisions = serializers.IntegerField()


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
        responses={200: MetricsSerializer},
    )
    def get(self, request: Request) -> Response:
        period = parse_period(request.query_params.get("since"), request.query_params.get("until"))
        return Response(rollback_metrics(period))
