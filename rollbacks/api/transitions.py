"""What people do to a running rollback over REST: confirm its cascade one level deeper, retry a step, resolve a
step by hand. Each view calls one service and answers with the rollback as GET shows it."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rollbacks import execution
from rollbacks.api.serializers import RollbackSerializer
from rollbacks.selectors import get_rollback_for, step_of


# A plain Serializer here reads a request body or draws a response from a dict: it holds no model instance, so its
# instance type (the stubs' type parameter) is Any.
class ConfirmCascadeSerializer(serializers.Serializer[Any]):
    depth = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=1000, help_text="Absent: one level deeper."
    )


class ResolveStepSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(max_length=10_000, help_text="What was done by hand.")


def _validated(serializer_class: Any, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _answer(request: Request, rollback_id: Any) -> Response:
    return Response(RollbackSerializer(get_rollback_for(request.user, rollback_id)).data)


class ConfirmCascadeView(APIView):
    @extend_schema(
        request=ConfirmCascadeSerializer, responses={200: RollbackSerializer}, operation_id="confirm_cascade"
    )
    def post(self, request: Request, pk: str) -> Response:
        rollback = get_rollback_for(request.user, pk, details=False)
        fields = _validated(ConfirmCascadeSerializer, request)
        execution.confirm_cascade(rollback.pk, actor=request.user, depth=fields.get("depth"))
        return _answer(request, pk)


class RetryStepView(APIView):
    @extend_schema(request=None, responses={200: RollbackSerializer}, operation_id="retry_step")
    def post(self, request: Request, pk: str, step_id: str) -> Response:
        rollback = get_rollback_for(request.user, pk, details=False)
        execution.retry_step(rollback.pk, step_of(rollback, step_id), actor=request.user)
        return _answer(request, pk)


class ResolveStepView(APIView):
    @extend_schema(request=ResolveStepSerializer, responses={200: RollbackSerializer}, operation_id="resolve_step")
    def post(self, request: Request, pk: str, step_id: str) -> Response:
        rollback = get_rollback_for(request.user, pk, details=False)
        step = step_of(rollback, step_id)
        fields = _validated(ResolveStepSerializer, request)
        execution.resolve_step(rollback.pk, step, actor=request.user, note=fields["note"])
        return _answer(request, pk)
