"""What an integrator may post as an action, checked field by field before anything is looked up.

`clean_action` turns a decoded JSON object (or the same fields from Python, with datetime objects) into an
`ActionInput`, or raises `Invalid` with every field error at once. It never trusts types: the body came from a
client, and bad input must end as a 400, never as a database error.
"""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.utils import timezone
from jsonschema import Draft202012Validator
from referencing.exceptions import Unresolvable

from rollback_console.errors import Invalid

FIELDS = (
    "external_id",
    "action_type",
    "subject",
    "payload",
    "executed_at",
    "approved_by",
    "approved_at",
    "approval_context",
    "caused_by",
)
REQUIRED = ("external_id", "action_type", "subject", "executed_at", "approved_by", "approved_at")
MAX_LENGTHS = {"external_id": 255, "action_type": 100, "subject": 255, "approved_by": 150}
MAX_CAUSED_BY = 1000
MAX_JSON_DEPTH = 32
# Clocks drift: an integrator's clock a little ahead of ours is no reason to refuse its record.
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_SCHEMA_ERRORS = 20
MAX_MESSAGE_LENGTH = 300

FieldErrors = dict[str, Any]


@dataclass(frozen=True)
class ActionInput:
    external_id: str
    action_type: str
    subject: str
    payload: dict[str, Any]
    executed_at: datetime
    approved_by: str
    approved_at: datetime
    approval_context: dict[str, Any]
    caused_by: tuple[str, ...]  # distinct, in the order sent
    fingerprint: str


def clean_action(data: Any) -> ActionInput:
    errors: FieldErrors = {}
    cleaned = clean_action_fields(data, errors)
    if errors or cleaned is None:
        raise Invalid(errors)
    return cleaned


def clean_action_fields(data: Any, errors: FieldErrors) -> ActionInput | None:
    """Like `clean_action`, but adds the errors to `errors` and returns None, so a batch can collect them."""
    if not isinstance(data, Mapping):
        errors["non_field_errors"] = [f"Expected a JSON object, got {_json_type(data)}."]
        return None
    for key in data:
        if key not in FIELDS:
            errors[str(key)] = ["Unknown field."]
    for key in REQUIRED:
        if data.get(key) is None:
            errors[key] = ["This field is required." if key not in data else "This field may not be null."]

    texts = {key: _text(key, data.get(key), errors) for key in MAX_LENGTHS if data.get(key) is not None}
    executed_at = _moment("executed_at", data.get("executed_at"), errors)
    approved_at = _moment("approved_at", data.get("approved_at"), errors)
    payload = _json_object("payload", data.get("payload", {}), errors)
    approval_context = _json_object("approval_context", data.get("approval_context", {}), errors)
    caused_by = _external_ids("caused_by", data.get("caused_by", []), errors)
    if executed_at is not None and approved_at is not None:
        _plausible_times(executed_at, approved_at, errors)
    if errors:
        return None
    assert executed_at is not None and approved_at is not None and payload is not None
    assert approval_context is not None and caused_by is not None
    canonical = {
        "external_id": texts["external_id"],
        "action_type": texts["action_type"],
        "subject": texts["subject"],
        "payload": payload,
        "executed_at": _utc_text(executed_at),
        "approved_by": texts["approved_by"],
        "approved_at": _utc_text(approved_at),
        "approval_context": approval_context,
        "caused_by": sorted(caused_by),
    }
    # The same body sent twice (keys in any order, times in any offset) has the same fingerprint.
    fingerprint = hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return ActionInput(
        external_id=str(texts["external_id"]),
        action_type=str(texts["action_type"]),
        subject=str(texts["subject"]),
        payload=payload,
        executed_at=executed_at,
        approved_by=str(texts["approved_by"]),
        approved_at=approved_at,
        approval_context=approval_context,
        caused_by=caused_by,
        fingerprint=fingerprint,
    )


def _plausible_times(executed_at: datetime, approved_at: datetime, errors: FieldErrors) -> None:
    """An approval given after the action ran, or an action that has not run yet, is a wrong record: the
    approval is what a reviewer judges the action by, and the reversal window starts at the execution."""
    if approved_at > executed_at:
        errors["approved_at"] = [
            f"Later than executed_at ({_utc_text(approved_at)} > {_utc_text(executed_at)}): "
            "an action is approved before it is executed."
        ]
    if executed_at > timezone.now() + FUTURE_TOLERANCE:
        errors["executed_at"] = ["More than 5 minutes in the future: record an action once it has been executed."]


def json_pointer(*parts: Any) -> str:
    """`payload/lines/0/note`: RFC 6901 tokens joined by slashes, without the leading one, as errors are keyed."""
    return "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def payload_schema_errors(
    validator: Draft202012Validator,
    payload: Mapping[str, Any],
    errors: FieldErrors,
    fast_check: Callable[[Any], Any] | None = None,
) -> None:
    """Adds each way `payload` breaks its action type's schema, keyed by JSON pointer (`payload/amount`).
    `fast_check` (fastjsonschema, about 40 times faster) passes a valid payload; jsonschema names the errors."""
    if fast_check is not None:
        try:
            fast_check(payload)
            return
        except Exception:  # JsonSchemaException or anything it trips on: jsonschema below has the last word
            pass
    try:
        found = sorted(validator.iter_errors(payload), key=lambda error: list(map(str, error.absolute_path)))
    except Unresolvable:  # the manifest loader resolves every reference; this guards a stored older version
        errors["payload"] = ["The action type's payload schema cannot be applied; ask the policy owner."]
        return
    for error in found[:MAX_SCHEMA_ERRORS]:
        place = ["payload", *error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, Mapping):
            # One error per missing property, worded by jsonschema; naming the property's own place is clearer.
            for name in error.validator_value:
                if name not in error.instance:
                    _add(errors, json_pointer(*place, name), "This field is required.")
            continue
        message = error.message
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
        _add(errors, json_pointer(*place), message)


def _add(errors: FieldErrors, key: str, message: str) -> None:
    messages = errors.setdefault(key, [])
    if message not in messages:
        messages.append(message)


def clean_external_ids(field: str, value: Any) -> tuple[str, ...]:
    errors: FieldErrors = {}
    result = _external_ids(field, value, errors)
    if errors or result is None:
        raise Invalid(errors)
    return result


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


def _text(key: str, value: Any, errors: FieldErrors) -> str | None:
    if not isinstance(value, str):
        errors[key] = [f"Expected a string, got {_json_type(value)}."]
        return None
    if not value.strip():
        errors[key] = ["This field may not be blank."]
    elif len(value) > MAX_LENGTHS[key]:
        errors[key] = [f"Ensure this field has no more than {MAX_LENGTHS[key]} characters."]
    elif "\x00" in value:
        errors[key] = ["Null characters are not allowed."]
    else:
        return value
    return None


def _moment(key: str, value: Any, errors: FieldErrors) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            errors[key] = ["Expected an ISO 8601 date and time with a UTC offset, e.g. 2026-11-28T10:00:00Z."]
            return None
    else:
        errors[key] = [f"Expected an ISO 8601 date and time string, got {_json_type(value)}."]
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors[key] = ["Include a UTC offset (such as Z or +01:00): a time without one is ambiguous."]
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        errors[key] = ["This time is out of range."]
        return None


def _json_object(key: str, value: Any, errors: FieldErrors) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        errors[key] = [f"Expected a JSON object, got {_json_type(value)}."]
        return None
    problem = _json_problem(value)
    if problem:
        errors[key] = [problem]
        return None
    return dict(value)


def _json_problem(value: Any) -> str | None:
    """Why a decoded value cannot be stored as JSON in PostgreSQL, or None. Iterative: depth is client-chosen."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"Nested more than {MAX_JSON_DEPTH} levels deep."
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return "Object keys must be strings."
                if "\x00" in key:
                    return "Null characters are not allowed."
                stack.append((child, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "Null characters are not allowed."
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return "Numbers must be finite."
        elif item is not None and not isinstance(item, bool | int):
            return f"{type(item).__name__} is not a JSON value."
    return None


def _external_ids(key: str, value: Any, errors: FieldErrors) -> tuple[str, ...] | None:
    if value is None or isinstance(value, str | bytes) or not isinstance(value, Sequence):
        errors[key] = [f"Expected a list of external ids, got {_json_type(value)}."]
        return None
    if len(value) > MAX_CAUSED_BY:
        errors[key] = [f"Ensure this list has no more than {MAX_CAUSED_BY} external ids."]
        return None
    item_errors: dict[str, list[str]] = {}
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            item_errors[str(index)] = ["Expected a non-empty string."]
        elif len(item) > MAX_LENGTHS["external_id"] or "\x00" in item:
            item_errors[str(index)] = ["Not an external id (at most 255 characters, no null characters)."]
    if item_errors:
        errors[key] = item_errors
        return None
    return tuple(dict.fromkeys(value))


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
