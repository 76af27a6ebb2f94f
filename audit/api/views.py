"""/api/v1/audit/: the trail, read-only, and its verification."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from audit import selectors
from audit.api.serializers import AuditEventFilterSerializer, AuditEventSerializer, AuditVerificationSerializer
from audit.verification import verify_chain

_REFUSED = {
    401: OpenApiResponse(OpenApiTypes.OBJECT, description="Not authenticated."),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description="Neither the auditor nor a signing or reviewing role."),
}


class ReadsAuditTrail(BasePermission):
    message = "Reading the audit trail needs the auditor role or a signing or reviewing role."

    def has_permission(self, request: Request, view: Any) -> bool:
        return selectors.may_read_trail(request.user)


# Reading the trail counts and pages rows of a table that may hold millions: its own, lower rate on top of the rest.
_THROTTLES = [AnonRateThrottle, UserRateThrottle, ScopedRateThrottle]


class AuditEventListView(generics.ListAPIView):
    permission_classes = [IsAuthenticated, ReadsAuditTrail]
    throttle_classes = _THROTTLES
    throttle_scope = "audit"
    serializer_class = AuditEventSerializer
    filter_backends: list[Any] = []  # the filters are the selector's, validated below

    def get_queryset(self) -> Any:
        filters = AuditEventFilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        return selectors.audit_events(
            action_id=params.get("action"),
            rollback_id=params.get("rollback"),
            kind=params.get("kind"),
            after_seq=params.get("after_seq"),
            scope=selectors.trail_scope_for(self.request.user),
        )

    @extend_schema(
        summary="The append-only audit trail",
        parameters=[AuditEventFilterSerializer],
        responses={
            200: AuditEventSerializer(many=True),
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="Field errors: {field: [messages]}."),
            **_REFUSED,
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class AuditVerifyView(APIView):
    permission_classes = [IsAuthenticated, ReadsAuditTrail]
    throttle_classes = _THROTTLES
    throttle_scope = "audit"

    @extend_schema(
        summary="Recompute the audit chain",
        description='`{"ok": true, "events", "head"}`, or `{"ok": false, "events", "broken_seq", "reason"}` naming '
        "the first seq that breaks.",
        responses={200: AuditVerificationSerializer, **_REFUSED},
    )
    def get(self, request: Request) -> Response:
        return Response(verify_chain().as_dict())
