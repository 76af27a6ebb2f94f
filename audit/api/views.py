"""/api/v1/audit/: the trail, read-only, and its verification."""

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle, UserRateThrottle
from rest_framework.views import APIView

from audit import selectors
from audit.api.serializers import AuditEventSerializer, AuditVerificationSerializer
from audit.models import AuditEvent
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


def _id_parameter(name: str, minimum: int, description: str) -> OpenApiParameter:
    schema = {"type": "integer", "maximum": selectors.LARGEST_ID, "minimum": minimum, "format": "int64"}
    return OpenApiParameter(name, schema, description=description, allow_blank=True)


_FILTERS = selectors.AuditEventFilter.base_filters
_FILTER_PARAMETERS = [
    _id_parameter("action", 1, _FILTERS["action"].extra["help_text"]),
    _id_parameter("after_seq", 0, _FILTERS["after_seq"].extra["help_text"]),
    OpenApiParameter(
        "kind",
        {"type": "string", "maxLength": 64, "minLength": 1},
        description=_FILTERS["kind"].extra["help_text"],
        allow_blank=True,
    ),
    _id_parameter("rollback", 1, _FILTERS["rollback"].extra["help_text"]),
]


class AuditEventListView(generics.ListAPIView[AuditEvent]):
    permission_classes = [IsAuthenticated, ReadsAuditTrail]
    throttle_classes = _THROTTLES
    throttle_scope = "audit"
    serializer_class = AuditEventSerializer
    filter_backends: list[Any] = []  # the filters are the selector's FilterSet, applied after the reader's scope

    def get_queryset(self) -> QuerySet[AuditEvent]:
        events = selectors.audit_events(scope=selectors.trail_scope_for(self.request.user))
        filters = selectors.AuditEventFilter(self.request.query_params, queryset=events)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return cast("QuerySet[AuditEvent]", filters.qs)

    @extend_schema(
        summary="The append-only audit trail",
        parameters=_FILTER_PARAMETERS,
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
