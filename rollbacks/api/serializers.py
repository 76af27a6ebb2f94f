"""The rollback as the API shows it (RollbackSerializer: every rollback endpoint answers with it) and the
bodies the API accepts. Input serializers only check shapes and types; the rules live in rollbacks.services."""

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from rollbacks.models import Communication, Rollback, SignOff, SignoffDecision, Step
from rollbacks.selectors import progress_of, step_counts_of


# A plain Serializer here reads a request body or draws a response from a dict: it holds no model instance, so its
# instance type (the stubs' type parameter) is Any.
class RequiredSignoffSerializer(serializers.Serializer[Any]):
    role = serializers.CharField()
    count = serializers.IntegerField()
    given = serializers.IntegerField()


class SignOffSerializer(serializers.ModelSerializer[SignOff]):
    signer = serializers.CharField(source="signer.username")

    class Meta:
        model = SignOff
        fields = ["signer", "role", "decision", "comment", "at"]


class StepSerializer(serializers.ModelSerializer[Step]):
    action = serializers.IntegerField(source="action_id")

    class Meta:
        model = Step
        fields = ["id", "action", "depth", "outcome", "attempts", "detail", "is_loop"]


class CommunicationSerializer(serializers.ModelSerializer[Communication]):
    class Meta:
        model = Communication
        fields = ["audience", "channel", "status", "attempts"]


class PlanSerializer(serializers.Serializer[Any]):
    actions = serializers.IntegerField()
    cascade = serializers.IntegerField()
    irreversible = serializers.IntegerField()
    window_expired = serializers.IntegerField()
    # Planned actions already reversed by an earlier rollback (their steps call nothing); 0 for plans frozen before
    # this count existed.
    already_reversed = serializers.IntegerField(default=0)
    action_ids = serializers.ListField(child=serializers.IntegerField())


class RollbackSummarySerializer(serializers.ModelSerializer[Rollback]):
    """A rollback in a list: everything but its steps and communications."""

    queue = serializers.CharField(source="trigger", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    required_signoffs = serializers.SerializerMethodField()
    signoffs = SignOffSerializer(many=True, read_only=True)
    plan = PlanSerializer(read_only=True)

    class Meta:
        model = Rollback
        fields = [
            "id",
            "trigger",
            "queue",
            "state",
            "reason",
            "reference",
            "requested_by",
            "policy_version",
            "selector",
            "max_cascade_depth",
            "confirmed_depth",
            "required_signoffs",
            "signoffs",
            "plan",
            "created_at",
            "authorized_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(RequiredSignoffSerializer(many=True))
    def get_required_signoffs(self, rollback: Rollback) -> list[dict[str, Any]]:
        given: dict[str, int] = {}
        for signoff in rollback.signoffs.all():  # prefetched
            if signoff.decision == SignoffDecision.APPROVE:
                given[signoff.role] = given.get(signoff.role, 0) + 1
        return [
            {"role": item["role"], "count": item["count"], "given": given.get(item["role"], 0)}
            for item in rollback.required_signoffs
        ]


def _step_counts_field() -> Any:
    return serializers.DictField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="How many steps have each outcome; every outcome is named, 0 included.",
    )


class ProgressSerializer(serializers.Serializer[Any]):
    """rollbacks.selectors.StepProgress."""

    total = serializers.IntegerField(help_text="Every step, loop arrivals included.")
    finished = serializers.IntegerField(help_text="reversed, already_reversed or manual_done.")
    needs_person = serializers.IntegerField(help_text="Steps that wait for a person (retry or resolve).")
    waiting = serializers.IntegerField(help_text="awaiting_confirmation.")
    percent = serializers.IntegerField(
        help_text="finished / total in whole percent, rounded down (100 only when every step is done); 0 for no step."
    )


class RollbackSerializer(RollbackSummarySerializer):
    """The GET shape of the contract. Expects rollbacks.selectors.with_details (a constant number of queries).
    `steps` holds the first STEPS_INLINE steps by depth and id (every step of a rollback up to that size);
    `steps_total`, `step_counts` and `progress` count them all, and GET .../steps/ pages through them."""

    steps = StepSerializer(many=True, read_only=True, source="inline_steps")
    steps_total = serializers.SerializerMethodField()
    step_counts = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    communications = CommunicationSerializer(many=True, read_only=True)

    class Meta(RollbackSummarySerializer.Meta):
        fields = [
            *RollbackSummarySerializer.Meta.fields,
            "steps",
            "steps_total",
            "step_counts",
            "progress",
            "communications",
        ]
        read_only_fields = fields

    def get_steps_total(self, rollback: Rollback) -> int:
        return progress_of(rollback).total

    @extend_schema_field(_step_counts_field())
    def get_step_counts(self, rollback: Rollback) -> dict[str, int]:
        return step_counts_of(rollback)

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, rollback: Rollback) -> dict[str, int]:
        progress = progress_of(rollback)
        return {
            "total": progress.total,
            "finished": progress.finished,
            "needs_person": progress.needs_person,
            "waiting": progress.waiting,
            "percent": progress.percent,
        }


class StepPageSerializer(serializers.Serializer[Any]):
    """A page of GET /api/v1/rollbacks/{id}/steps/: the steps the filters keep, and the whole rollback's counts."""

    count = serializers.IntegerField(help_text="Steps the filters keep.")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    step_counts = _step_counts_field()
    results = StepSerializer(many=True)


class SelectorSerializer(serializers.Serializer[Any]):
    """The action filters a request may select its targets with (documentation; actions.selectors checks)."""

    action_type = serializers.CharField(required=False)
    subject = serializers.CharField(required=False)
    external_id = serializers.CharField(required=False)
    state = serializers.CharField(required=False)
    policy_version = serializers.IntegerField(required=False)
    approved_by = serializers.CharField(required=False, help_text="The approver's username.")
    integrator = serializers.CharField(required=False, help_text="The integrator's username.")
    executed_after = serializers.DateTimeField(required=False)
    executed_before = serializers.DateTimeField(required=False)


class RollbackRequestSerializer(serializers.Serializer[Any]):
    trigger = serializers.CharField(max_length=32)
    reason = serializers.CharField(max_length=10_000)
    actions = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        allow_empty=False,
        max_length=100_000,
    )
    selector = serializers.DictField(required=False, help_text="Action filters (see SelectorSerializer).")
    max_cascade_depth = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True, allow_null=True)

    def validate_selector(self, value: dict[str, Any]) -> dict[str, Any]:
        errors = {}
        for key, item in value.items():
            if isinstance(item, bool) or not isinstance(item, str | int | float | None):
                errors[key] = ["Must be a string or a number."]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields)) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs


class SignOffRequestSerializer(serializers.Serializer[Any]):
    decision = serializers.ChoiceField(choices=SignoffDecision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
