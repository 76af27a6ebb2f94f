from typing import Any

import orjson
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from audit.models import AuditEvent


@extend_schema_field(OpenApiTypes.OBJECT)
class StoredJSONField(serializers.Field[Any, Any, Any, Any]):
    """The event's data, stored as canonical JSON text, given back as the object it encodes."""

    def to_representation(self, value: str) -> Any:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value  # a row changed outside the application: show what is there; verify/ names it


class AuditEventSerializer(serializers.ModelSerializer[AuditEvent]):
    action = serializers.IntegerField(source="action_id", allow_null=True, read_only=True)
    rollback = serializers.IntegerField(source="rollback_id", allow_null=True, read_only=True)
    # DRF's metaclass takes declared fields off the class, so this does not shadow Serializer.data at run time.
    data = StoredJSONField(read_only=True)  # type: ignore[assignment]

    class Meta:
        model = AuditEvent
        fields = ["seq", "at", "actor", "kind", "action", "rollback", "data", "prev_hash", "hash"]
        read_only_fields = fields


class AuditAnchorSerializer(serializers.Serializer[Any]):
    seq = serializers.IntegerField()
    hash = serializers.CharField()


class AuditVerificationSerializer(serializers.Serializer[Any]):
    ok = serializers.BooleanField()
    events = serializers.IntegerField(help_text="every event in the trail")
    head = serializers.CharField(required=False, help_text="the last event's hash, when the chain is whole")
    broken_seq = serializers.IntegerField(required=False, help_text="the first seq that breaks")
    reason = serializers.ChoiceField(
        required=False,
        choices=["missing", "prev_hash", "hash", "head", "beyond_head", "anchor", "anchor_missing", "malformed"],
    )
    anchor = AuditAnchorSerializer(required=False)
    anchors_checked = serializers.IntegerField(required=False)
