"""GET /api/v1/inbox/: what the signed-in person may act on now, most urgent first (rollbacks.inbox)."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from rollbacks.inbox import KINDS, inbox_for
from rollbacks.models import Trigger


class InboxItemSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=KINDS)
    rollback = serializers.IntegerField()
    step = serializers.IntegerField(allow_null=True, help_text="null where the item is about the whole rollback")
    task = serializers.IntegerField(allow_null=True, help_text="the remediation task (kind `remediation` only)")
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    since = serializers.DateTimeField(help_text="since when it waits")
    window_closes_at = serializers.DateTimeField(allow_null=True)
    summary = serializers.CharField(help_text="what is being reversed")


class InboxFilterSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=KINDS, required=False)
    trigger = serializers.ChoiceField(choices=Trigger.choices, required=False)


class InboxView(generics.ListAPIView[Any]):
    """A three-line list: the filters checked (400 naming a bad one), the inbox as the paginator's sequence."""

    permission_classes = [IsAuthenticated]
    serializer_class = InboxItemSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        filters = InboxFilterSerializer(data=self.request.query_params)
        if not filters.is_valid():
            raise ValidationError(filters.errors)
        chosen = filters.validated_data
        return inbox_for(self.request.user, chosen.get("kind"), trigger=chosen.get("trigger"))

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(KINDS)),
            OpenApiParameter("trigger", OpenApiTypes.STR, enum=Trigger.values),
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
