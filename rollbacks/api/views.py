"""Rollbacks over REST: request, list, read, sign off, cancel. Each view calls one service or selector."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from rollback_console.pagination import StrictLimitOffsetPagination
from rollbacks import services
from rollbacks.api.serializers import (
    RollbackRequestSerializer,
    RollbackSerializer,
    RollbackSummarySerializer,
    SignOffRequestSerializer,
    StepPageSerializer,
    StepSerializer,
)
from rollbacks.idempotency import MAX_KEY_LENGTH, respond_once
from rollbacks.models import Rollback, RollbackState, StepOutcome, Trigger
from rollbacks.selectors import (
    RollbackListFilter,
    StepFilter,
    get_rollback_for,
    rollback_steps,
    rollbacks_listed_for,
    step_counts_of,
)


class StepPagination(StrictLimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


def _validated(serializer_class: Any, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("state", OpenApiTypes.STR, enum=RollbackState.values),
            OpenApiParameter("trigger", OpenApiTypes.STR, enum=Trigger.values),
            OpenApiParameter("queue", OpenApiTypes.STR, enum=["mine"], description="mine: waiting for my sign-off"),
        ],
        responses=RollbackSummarySerializer(many=True),
    ),
    retrieve=extend_schema(responses=RollbackSerializer),
)
class RollbackViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Rollback]):
    serializer_class = RollbackSerializer
    queryset = Rollback.objects.none()  # for the schema; get_queryset decides
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Rollback]:
        filters = RollbackListFilter(self.request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        return rollbacks_listed_for(self.request.user, filters)

    def get_serializer_class(self) -> Any:
        return RollbackSummarySerializer if self.action == "list" else RollbackSerializer

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(RollbackSerializer(get_rollback_for(request.user, pk)).data)

    @extend_schema(
        request=RollbackRequestSerializer,
        responses={201: RollbackSerializer},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="A retry with the same key and body gets the first response (kept 24 h); "
                "the same key with another body gets 409.",
            )
        ],
    )
    def create(self, request: Request) -> Response:
        fields = _validated(RollbackRequestSerializer, request)
        user = request.user

        def respond() -> tuple[int, Any]:
            rollback = services.request_rollback(requester=user, **fields)
            return status.HTTP_201_CREATED, RollbackSerializer(get_rollback_for(user, rollback.pk)).data

        key = request.headers.get("Idempotency-Key")
        if key is None:
            code, body = respond()
        else:
            if not key.strip() or len(key) > MAX_KEY_LENGTH:
                raise ValidationError({"Idempotency-Key": [f"Must be 1 to {MAX_KEY_LENGTH} characters."]})
            # A refusal is audited outside the transaction that keeps the key, which would undo it.
            services.ensure_may_request(user, fields["trigger"], actions=fields.get("actions"))
            code, body = respond_once(user=user, key=key, body=request.data, respond=respond)
        return Response(body, status=code)

    @extend_schema(request=SignOffRequestSerializer, responses={200: RollbackSerializer})
    @action(detail=True, methods=["post"])
    def signoffs(self, request: Request, pk: str) -> Response:
        rollback = get_rollback_for(request.user, pk, details=False)
        fields = _validated(SignOffRequestSerializer, request)
        services.sign_off(rollback.pk, signer=request.user, decision=fields["decision"], comment=fields["comment"])
        return Response(RollbackSerializer(get_rollback_for(request.user, pk)).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "outcome",
                OpenApiTypes.STR,
                enum=StepOutcome.values,
                many=True,
                explode=True,
                description="Repeat for any of several outcomes.",
            ),
            OpenApiParameter("depth", OpenApiTypes.INT, description="The cascade level (0: the targets)."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="Steps per page (100; at most 1000)."),
            OpenApiParameter("offset", OpenApiTypes.INT),
        ],
        responses=StepPageSerializer,
        operation_id="rollback_steps",
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def steps(self, request: Request, pk: str) -> Response:
        """The rollback's steps by depth and id, a page at a time, with the counts of every outcome."""
        rollback = get_rollback_for(request.user, pk, details=False)
        filters = StepFilter(request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        paginator = StepPagination()
        page = paginator.paginate_queryset(rollback_steps(rollback, filters), request, view=self)
        return Response(
            {
                "count": paginator.count,
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
                "step_counts": step_counts_of(rollback),
                "results": StepSerializer(page, many=True).data,
            }
        )

    @extend_schema(request=None, responses={200: RollbackSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        rollback = get_rollback_for(request.user, pk, details=False)
        services.cancel_rollback(rollback.pk, actor=request.user)
        return Response(RollbackSerializer(get_rollback_for(request.user, pk)).data)
