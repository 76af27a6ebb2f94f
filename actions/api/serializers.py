"""The shapes of actions on the wire.

Input is checked by actions.intake (through the services), so the request serializers here only describe the
body for the OpenAPI schema. Output is built by plain functions, because a batch answers with a thousand actions
and DRF's field-by-field machinery would cost more than recording them; the serializers' `to_representation`
calls the same functions, so the schema and the responses cannot drift apart (tests/actions/test_schema.py).
"""

from datetime import UTC, datetime
from typing import Any

from rest_framework import serializers

from actions.models import Action, ActionState, Reversibility
from actions.selectors import ReversalPreview, caused_by_of, causes_of
from policies.manifest import ActionTypePolicy, Manifest, SignoffRequirement
from rollbacks.selectors import rollbacks_of_action


def iso_time(moment: datetime | None) -> str | None:
    """ISO 8601 with an offset, as DRF writes it everywhere else in the API (UTC as `Z`)."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def represent_action(action: Action, *, caused_by: list[str] | None = None) -> dict[str, Any]:
    """`caused_by` when the caller knows it; otherwise read from the action's (prefetched) links."""
    return {
        "id": action.pk,
        "external_id": action.external_id,
        "action_type": action.action_type,
        "subject": action.subject,
        "payload": action.payload,
        "executed_at": iso_time(action.executed_at),
        "approved_by": action.approved_by.get_username(),
        "approved_at": iso_time(action.approved_at),
        "approval_context": action.approval_context,
        "caused_by": caused_by_of(action) if caused_by is None else caused_by,
        "integrator": action.integrator.get_username(),
        "state": action.state,
        "policy_version": action.policy_version_id,
        "reversibility": {
            "class": action.reversibility,
            "method": action.reversal_method or None,
            "prerequisites": action.prerequisites,
            "window_ends_at": iso_time(action.window_ends_at),
            "side_effects": action.side_effects,
        },
        "amount": None if action.amount is None else str(action.amount),
        "recorded_at": iso_time(action.recorded_at),
    }


def represent_action_details(action: Action) -> dict[str, Any]:
    # The API is the web layer over both apps: it composes the action with the rollbacks' own read of it.
    return {**represent_action(action), "causes": causes_of(action), "rollbacks": rollbacks_of_action(action.pk)}


ReversibilitySerializer = type(
    "ReversibilitySerializer",
    (serializers.Serializer,),
    {
        "__doc__": "What the policy current at recording promised about reversing the action (frozen).",
        "class": serializers.ChoiceField(choices=Reversibility.choices),
        "method": serializers.CharField(allow_null=True, help_text="webhook, python or manual; null if none."),
        "prerequisites": serializers.ListField(child=serializers.CharField()),
        "window_ends_at": serializers.DateTimeField(allow_null=True, help_text="null: no reversal window."),
        "side_effects": serializers.ListField(child=serializers.CharField()),
    },
)


# Apart from ActionSerializer (an Action), a plain Serializer here reads a request body or draws a response from a
# dict or a dataclass: it holds no model instance, so its instance type (the stubs' type parameter) is Any.
class ActionInputSerializer(serializers.Serializer[Any]):
    """An action as an integrator posts it. Times need a UTC offset; unknown fields are refused."""

    external_id = serializers.CharField(max_length=255, help_text="Unique per integrator; the replay key.")
    action_type = serializers.CharField(max_length=100, help_text="An action type of the current policy.")
    subject = serializers.CharField(max_length=255)
    payload = serializers.DictField(required=False, default=dict)
    executed_at = serializers.DateTimeField()
    approved_by = serializers.CharField(max_length=150, help_text="The username of the person who approved it.")
    approved_at = serializers.DateTimeField()
    approval_context = serializers.DictField(required=False, default=dict)
    caused_by = serializers.ListField(
        child=serializers.CharField(max_length=255),
        required=False,
        default=list,
        max_length=1000,
        help_text="External ids of this integrator's actions that led to this one (earlier in a batch is fine).",
    )


class BatchInputSerializer(serializers.Serializer[Any]):
    actions = ActionInputSerializer(many=True, help_text="Up to 1,000 actions, recorded in order, all or none.")


class LinksInputSerializer(serializers.Serializer[Any]):
    causes = serializers.ListField(
        child=serializers.CharField(max_length=255),
        help_text="External ids of this integrator's actions that this action caused.",
    )


class ActionSerializer(serializers.Serializer[Action]):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    action_type = serializers.CharField()
    subject = serializers.CharField()
    payload = serializers.DictField()
    executed_at = serializers.DateTimeField()
    approved_by = serializers.CharField(help_text="The approver's username.")
    approved_at = serializers.DateTimeField()
    approval_context = serializers.DictField()
    caused_by = serializers.ListField(child=serializers.CharField(), help_text="External ids upstream.")
    integrator = serializers.CharField(help_text="The username of the integrator that recorded it.")
    state = serializers.ChoiceField(choices=ActionState.choices)
    policy_version = serializers.IntegerField(
        help_text="The id of the policy version current when it was recorded (filter with ?policy_version=)."
    )
    reversibility = ReversibilitySerializer()
    amount = serializers.DecimalField(
        max_digits=18, decimal_places=4, allow_null=True, help_text="From the policy's amount field, if numeric."
    )
    recorded_at = serializers.DateTimeField()

    def to_representation(self, instance: Action) -> dict[str, Any]:
        return represent_action(instance)


class ActionRollbackSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    trigger = serializers.CharField()
    state = serializers.CharField()
    outcome = serializers.CharField(allow_null=True, help_text="This action's step outcome in that rollback.")


class ActionDetailSerializer(ActionSerializer):
    causes = serializers.ListField(child=serializers.CharField(), help_text="External ids downstream.")
    rollbacks = ActionRollbackSerializer(many=True)

    def to_representation(self, instance: Action) -> dict[str, Any]:
        return represent_action_details(instance)


class BatchResultSerializer(serializers.Serializer[Any]):
    actions = ActionSerializer(many=True)
    created = serializers.IntegerField(help_text="How many were recorded now.")
    replayed = serializers.IntegerField(help_text="How many had been recorded before with the same body.")


class SignoffSerializer(serializers.Serializer[Any]):
    role = serializers.CharField()
    count = serializers.IntegerField()


class CascadeEntrySerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    action_type = serializers.CharField()
    subject = serializers.CharField()
    depth = serializers.IntegerField(help_text="1 for an action the previewed one caused directly, and so on.")
    via = serializers.IntegerField(help_text="The id of the action it is reached from.")
    state = serializers.CharField()
    reversibility = ReversibilitySerializer()
    window_open = serializers.BooleanField()


class LoopSerializer(serializers.Serializer[Any]):
    from_action = serializers.IntegerField()
    to_action = serializers.IntegerField()
    depth = serializers.IntegerField()
    path = serializers.ListField(child=serializers.IntegerField())


class ReversalPreviewSerializer(serializers.Serializer[Any]):
    action = serializers.IntegerField()
    reversibility = ReversibilitySerializer()
    window_open = serializers.BooleanField()
    window_ends_at = serializers.DateTimeField(allow_null=True)
    extra_signoffs = SignoffSerializer(many=True, help_text="What a reversal needs on top of its trigger's sign-offs.")
    prerequisites = serializers.ListField(child=serializers.CharField())
    side_effects = serializers.ListField(child=serializers.CharField())
    cascade = CascadeEntrySerializer(many=True)
    loops = LoopSerializer(many=True, help_text="Where the cascade comes back to an action on its path.")
    policy_version = serializers.IntegerField(help_text="The policy the cascade was planned with (the current one).")

    def to_representation(self, instance: ReversalPreview) -> dict[str, Any]:
        action = instance.action
        reversibility = represent_action(action)["reversibility"]
        return {
            "action": action.pk,
            "reversibility": reversibility,
            "window_open": instance.window_open,
            "window_ends_at": iso_time(instance.window_ends_at),
            "extra_signoffs": [{"role": s.role, "count": s.count} for s in instance.extra_signoffs],
            "prerequisites": action.prerequisites,
            "side_effects": action.side_effects,
            "cascade": [
                {
                    "id": entry.action.pk,
                    "external_id": entry.action.external_id,
                    "action_type": entry.action.action_type,
                    "subject": entry.action.subject,
                    "depth": entry.depth,
                    "via": entry.via,
                    "state": entry.action.state,
                    "reversibility": {
                        "class": entry.action.reversibility,
                        "method": entry.action.reversal_method or None,
                        "prerequisites": entry.action.prerequisites,
                        "window_ends_at": iso_time(entry.action.window_ends_at),
                        "side_effects": entry.action.side_effects,
                    },
                    "window_open": entry.window_open,
                }
                for entry in instance.cascade
            ],
            "loops": [
                {"from_action": loop.from_action, "to_action": loop.to_action, "depth": loop.depth, "path": loop.path}
                for loop in instance.loops
            ],
            "policy_version": instance.policy_version,
        }


_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day"}


def window_words(window_text: str | None) -> str | None:
    """ "30d" -> "30 days"."""
    if not window_text:
        return None
    number, unit = int(window_text[:-1]), _UNITS[window_text[-1]]
    return f"{number} {unit}" + ("" if number == 1 else "s")


def _signers(requirements: tuple[SignoffRequirement, ...]) -> str:
    names = []
    for requirement in requirements:
        role = requirement.role.replace("_", " ")
        if requirement.count == 1:
            names.append(("an " if role[0] in "aeiou" else "a ") + role)
        else:
            names.append(f"{requirement.count} people in {role}")
    return " and ".join(names)


def reversal_summary(policy: ActionTypePolicy, manifest: Manifest) -> str:
    """What an approval screen tells a reviewer a reversal would cost, in one sentence."""
    if policy.reversibility == "irreversible":
        return "not reversible: a reversal opens a task for a person to remediate by hand"
    what = "reversible" if policy.reversibility == "full" else "partly reversible"
    if policy.method == "manual":
        what += " by hand"
    window = window_words(policy.window_text)
    if window is None:
        return f"{what} at any time"
    expired = manifest.window_expired_signoffs
    if not expired:
        return f"{what} within {window}"
    many = len(expired) > 1 or expired[0].count > 1
    return f"{what} within {window}; after that {_signers(expired)} must {'also ' if many else ''}sign off"


class ActionTypeSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()
    reversibility = serializers.ChoiceField(choices=Reversibility.choices, help_text="The class: full, partial ...")
    method = serializers.CharField(allow_null=True)
    operation = serializers.CharField(allow_null=True, help_text="The operation a webhook reversal asks for.")
    window = serializers.CharField(allow_null=True, help_text='As in the manifest ("30d"); null: no window.')
    window_seconds = serializers.IntegerField(allow_null=True)
    prerequisites = serializers.ListField(child=serializers.CharField())
    side_effects = serializers.ListField(child=serializers.CharField())
    cascades_to = serializers.ListField(child=serializers.CharField())
    compensations = serializers.ListField(child=serializers.DictField())
    amount_field = serializers.CharField(allow_null=True)
    payload_schema = serializers.DictField(
        allow_null=True, help_text="The JSON Schema (draft 2020-12) every payload of this type must meet, or null."
    )
    window_expired_signoffs = SignoffSerializer(
        many=True, help_text="The extra sign-offs a reversal needs once the window has passed."
    )
    summary = serializers.CharField(help_text='e.g. "reversible within 30 days; after that an executive must sign off"')

    def to_representation(self, instance: tuple[ActionTypePolicy, Manifest]) -> dict[str, Any]:
        policy, manifest = instance
        return {
            "name": policy.name,
            "reversibility": policy.reversibility,
            "method": policy.method,
            "operation": policy.operation or None,
            "window": policy.window_text,
            "window_seconds": int(policy.window.total_seconds()) if policy.window is not None else None,
            "prerequisites": list(policy.prerequisites),
            "side_effects": list(policy.side_effects),
            "cascades_to": list(policy.cascades_to),
            "compensations": [{"notify": c.notify, "template": c.template} for c in policy.compensations],
            "amount_field": policy.amount_field,
            "payload_schema": policy.payload_validator.schema if policy.payload_validator is not None else None,
            "window_expired_signoffs": (
                [{"role": s.role, "count": s.count} for s in manifest.window_expired_signoffs]
                if policy.window is not None
                else []
            ),
            "summary": reversal_summary(policy, manifest),
        }


class ActionTypeListSerializer(serializers.Serializer[Any]):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    policy_version = serializers.IntegerField(help_text="The id of the current policy version.")
    policy_label = serializers.CharField()
    results = ActionTypeSerializer(many=True)


class ErrorSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
