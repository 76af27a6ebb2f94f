"""The console's forms. They only shape input: whether a request is allowed (who files, the reference, the
depth cap) is the service's decision, and its field errors are put back on the form."""

from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from actions.models import ActionState
from audit.selectors import LARGEST_ID
from policies.labels import label
from policies.selectors import current_policy, policy_versions
from rollback_console.errors import Invalid
from rollbacks.models import SignoffDecision
from rollbacks.services import MAX_ID

# The API's caps (rollbacks/api), so a page cannot put more into the trail than a token can: reasons, sign-off
# comments and notes; a search matches external ids and subjects, 255 characters at most.
MAX_TEXT_LENGTH = 10_000
MAX_SEARCH_LENGTH = 255


class RollbackRequestForm(forms.Form):
    trigger = forms.ChoiceField()
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=MAX_TEXT_LENGTH)
    reference = forms.CharField(required=False, max_length=200)
    max_cascade_depth = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=50,
        label="Cascade depth",
        help_text="How far downstream to reverse without asking again; empty means the trigger's cap.",
    )

    def __init__(self, *args: Any, triggers: list[str], **kwargs: Any):
        super().__init__(*args, **kwargs)
        manifest = current_policy()[1]
        trigger = self.fields["trigger"]
        assert isinstance(trigger, forms.ChoiceField)
        trigger.choices = [(name, label(name)) for name in triggers]
        caps = {name: manifest.triggers[name].max_cascade_depth for name in triggers}
        self.caps = caps
        self.reference_required = [name for name in triggers if manifest.triggers[name].reference_required]
        self.fields["reference"].help_text = (
            "Required for " + ", ".join(label(name) for name in self.reference_required) + "; optional otherwise."
            if self.reference_required
            else "Optional: a ticket or case number."
        )
        if caps:
            self.fields["max_cascade_depth"].help_text = "Empty means the trigger's cap: " + ", ".join(
                f"{label(name)} {cap}" for name, cap in caps.items()
            )

    def request_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "trigger": data["trigger"],
            "reason": data["reason"],
            "reference": data.get("reference") or "",
            "max_cascade_depth": data.get("max_cascade_depth"),
        }

    def add_service_errors(self, exc: Invalid) -> None:
        """Put a service's field errors on the matching fields, the rest on the form."""
        for name, problems in exc.errors.items():
            texts = problems if isinstance(problems, list | tuple) else [str(problems)]
            for text in texts:
                self.add_error(name if name in self.fields else None, str(text))


class SelectorForm(RollbackRequestForm):
    """A bulk request: the contract's action filters instead of a list of actions."""

    action_type = forms.ChoiceField(required=False)
    policy_version = forms.ModelChoiceField(queryset=policy_versions(), required=False, empty_label="any")
    approved_by = forms.CharField(required=False, max_length=150, help_text="The approver's username.")
    subject = forms.CharField(required=False, max_length=255)
    executed_after = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    executed_before = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    SELECTOR_FIELDS = ("action_type", "policy_version", "approved_by", "subject", "executed_after", "executed_before")

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        manifest = current_policy()[1]
        action_type = self.fields["action_type"]
        assert isinstance(action_type, forms.ChoiceField)
        action_type.choices = [("", "any")] + [(name, name) for name in manifest.action_types]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(name) for name in self.SELECTOR_FIELDS):
            raise forms.ValidationError("Choose at least one filter: a bulk rollback never selects every action.")
        return data

    def selector(self) -> dict[str, Any]:
        data = self.cleaned_data
        selector: dict[str, Any] = {}
        for name in self.SELECTOR_FIELDS:
            value = data.get(name)
            if value in (None, ""):
                continue
            if name == "policy_version":
                selector[name] = value.pk
            elif name.startswith("executed_"):
                selector[name] = value.isoformat()
            else:
                selector[name] = value
        return selector


class SignOffForm(forms.Form):
    decision = forms.ChoiceField(
        choices=SignoffDecision.choices, error_messages={"required": "Choose Approve or Reject."}
    )
    comment = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)


class RollbackNumbersField(forms.Field):
    """The `rollback` checkboxes of a batch decision: each a rollback number, repeats dropped."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "required": "Select at least one request.",
        "invalid": "“%(value)s” is not a rollback number.",
    }

    def to_python(self, value: Any) -> list[int]:
        numbers: list[int] = []
        for item in value or ():
            text = str(item).strip().lstrip("#")
            if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_ID:
                raise forms.ValidationError(
                    self.error_messages["invalid"], code="invalid", params={"value": str(item)[:20]}
                )
            numbers.append(int(text))
        return list(dict.fromkeys(numbers))


class BatchDecisionForm(forms.Form):
    """One decision and one comment over the requests ticked on the queue (rollbacks.services.sign_off_many)."""

    rollback = RollbackNumbersField()
    decision = forms.ChoiceField(
        choices=SignoffDecision.choices, error_messages={"required": "Choose Approve or Reject."}
    )
    comment = forms.CharField(required=False, max_length=MAX_TEXT_LENGTH)


class NoteForm(forms.Form):
    """What was done by hand: resolving a step, closing a remediation task."""

    note = forms.CharField(max_length=MAX_TEXT_LENGTH, error_messages={"required": "Say what was done by hand."})


class ActionSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=MAX_SEARCH_LENGTH)
    state = forms.CharField(required=False, max_length=64)

    def clean_state(self) -> str:
        """An unknown state filters nothing, as an old bookmark's would."""
        state = self.cleaned_data["state"]
        return state if state in ActionState.values else ""


class TrailPageForm(forms.Form):
    """Which page of a trail a page shows: the events before `before` (a seq), newest first."""

    before = forms.IntegerField(required=False, min_value=1, max_value=LARGEST_ID)


class CancelForm(forms.Form):
    """Cancelling asks twice: the confirmation page posts `confirm=yes`."""

    confirm = forms.ChoiceField(choices=[("yes", "yes")])


def errors_text(form: forms.Form) -> str:
    """A form's errors as one message, for a page that answers a POST with a redirect: each names its field."""
    parts = []
    for name, errors in form.errors.items():
        label_text = "" if name == NON_FIELD_ERRORS else label(name)
        parts += [f"{label_text}: {error}" if label_text else str(error) for error in errors]
    return " ".join(parts)
