"""Plausible records: times that cannot be true, amounts that are not amounts, and payloads against their schema."""

from datetime import timedelta
from unittest.mock import ANY

import pytest
from django.utils import timezone

from actions.models import Action
from actions.services import record_action
from audit.models import AuditEvent
from policies.manifest import ManifestError, parse_manifest
from policies.selectors import current_policy
from policies.services import load_policy
from rollback_console.errors import Invalid
from tests.actions.conftest import action_body
from tests.conftest import DEMO_MANIFEST

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/"
BATCH_URL = "/api/v1/actions/batch/"

ORDER_SCHEMA = """
payload_schema = { type = "object", required = ["order"], properties = { order = { type = "object", \
required = ["lines"], properties = { lines = { type = "array", items = { "$ref" = "#/$defs/line" } } } } }, \
"$defs" = { line = { type = "object", required = ["sku"], properties = { sku = { type = "string" }, \
"qty/max" = { type = "integer", minimum = 1 } } } } }
"""


def _with_record_update_schema(schema: str) -> str:
    text = DEMO_MANIFEST.read_text().replace('version = "demo-2026-11"', 'version = "demo-with-schema"')
    anchor = 'reversal = { method = "python", handler = "demo_shop.handlers.restore_record" }\n'
    assert anchor in text
    return text.replace(anchor, anchor + schema.strip() + "\n")


def test_an_approval_later_than_the_execution_is_refused_naming_approved_at(client_for, cast):
    body = action_body(executed_at="2026-11-28T21:00:00+01:00", approved_at="2026-11-28T21:00:00Z")

    response = client_for(cast.shop).post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "approved_at": [
            "Later than executed_at (2026-11-28T21:00:00.000000Z > 2026-11-28T20:00:00.000000Z): "
            "an action is approved before it is executed."
        ]
    }
    assert not Action.objects.exists()


def test_an_approval_at_the_very_moment_of_execution_is_plausible(cast):
    action, created = record_action(cast.shop, action_body(approved_at="2026-11-28T10:00:00Z"))

    assert created and action.approved_at == action.executed_at


def test_an_execution_more_than_five_minutes_ahead_of_our_clock_is_refused(cast):
    soon = timezone.now() + timedelta(minutes=4)
    too_soon = timezone.now() + timedelta(minutes=6)

    _, created = record_action(cast.shop, action_body(executed_at=soon, approved_at=soon))
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(executed_at=too_soon, approved_at=too_soon))

    assert created
    assert refused.value.errors == {
        "executed_at": ["More than 5 minutes in the future: record an action once it has been executed."]
    }


def test_a_batch_names_the_index_of_each_implausible_item(client_for, cast):
    actions = [action_body() for _ in range(4)]
    actions[1]["payload"] = {"amount": "-5", "currency": "EUR"}
    actions[3]["payload"] = {"currency": "eur"}
    counts = Action.objects.count(), AuditEvent.objects.count()

    response = client_for(cast.shop).post(BATCH_URL, {"actions": actions}, format="json")
    actions[1]["payload"]["amount"] = "5"
    actions[2]["executed_at"] = "2030-01-01T00:00:00Z"  # a time is judged with the shape, before any lookup
    future = client_for(cast.shop).post(BATCH_URL, {"actions": actions}, format="json")

    assert response.status_code == future.status_code == 400
    errors = response.json()["actions"]
    assert set(errors) == {"1", "3"}
    assert list(errors["1"]) == ["payload/amount"]
    assert future.json() == {"actions": {"2": {"executed_at": [ANY]}}}
    assert errors["3"]["payload/currency"] == ["'eur' does not match '^[A-Z]{3}$'"]
    assert errors["3"]["payload/amount"] == ["This field is required: refund.issue reads its amount from it."]
    assert (Action.objects.count(), AuditEvent.objects.count()) == counts


def test_each_schema_error_is_named_by_its_json_pointer_through_references(cast):
    load_policy(_with_record_update_schema(ORDER_SCHEMA), actor="paula")
    payload = {"order": {"lines": [{"sku": "A-1"}, {"qty/max": 0}, {"sku": 7, "qty/max": 2}]}}

    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(action_type="record.update", payload=payload))

    assert refused.value.errors == {
        "payload/order/lines/1/sku": ["This field is required."],
        "payload/order/lines/1/qty~1max": ["0 is less than the minimum of 1"],
        "payload/order/lines/2/sku": ["7 is not of type 'string'"],
    }


def test_a_payload_that_meets_its_schema_is_recorded(cast):
    load_policy(_with_record_update_schema(ORDER_SCHEMA), actor="paula")

    action, created = record_action(
        cast.shop, action_body(action_type="record.update", payload={"order": {"lines": [{"sku": "A", "qty/max": 1}]}})
    )

    assert created and action.payload["order"]["lines"][0]["sku"] == "A"


def test_a_missing_payload_object_is_checked_as_an_empty_one(cast):
    load_policy(_with_record_update_schema(ORDER_SCHEMA), actor="paula")
    body = action_body(action_type="record.update")
    del body["payload"]

    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, body)

    assert refused.value.errors == {"payload/order": ["This field is required."]}


def test_the_schema_is_compiled_once_per_policy_version(cast):
    first = current_policy()[1].action_types["refund.issue"].payload_validator
    second = current_policy()[1].action_types["refund.issue"].payload_validator

    assert first is not None and first is second
    assert first.schema["required"] == ["amount"]


@pytest.mark.parametrize(
    ("schema", "error"),
    [
        ('payload_schema = "object"', "payload_schema: must be an inline table holding a JSON Schema (draft 2020-12)"),
        (
            'payload_schema = { type = "objekt" }',
            "payload_schema.type: not a valid JSON Schema: 'objekt' is not valid under any of the given schemas",
        ),
        (
            'payload_schema = { properties = { sku = { pattern = "([a-z]" } } }',
            "payload_schema.properties.sku.pattern: not a valid JSON Schema: '([a-z]' is not a 'regex'",
        ),
        (
            'payload_schema = { properties = { a = { "$ref" = "https://example.com/s.json" } } }',
            "payload_schema.properties.a.\"$ref\": 'https://example.com/s.json': only references within the schema "
            "(#...) are allowed",
        ),
        (
            'payload_schema = { items = [{ "$ref" = "#/$defs/nothing" }] , type = "object" }',
            "payload_schema.items: not a valid JSON Schema:",
        ),
        (
            'payload_schema = { properties = { a = { "$ref" = "#/$defs/nothing" } } }',
            "payload_schema.properties.a.\"$ref\": '#/$defs/nothing' does not resolve within the schema",
        ),
    ],
)
def test_the_manifest_loader_refuses_an_invalid_payload_schema_by_key_path(schema, error):
    with pytest.raises(ManifestError) as refused:
        parse_manifest(_with_record_update_schema(schema))

    assert len(refused.value.errors) == 1
    assert refused.value.errors[0].startswith('action_types."record.update".' + error), refused.value.errors


def test_a_caller_without_a_role_cannot_record_and_learns_nothing_of_the_schema(client_for, cast):
    response = client_for(cast.nobody).post(URL, action_body(payload={"currency": "eur"}), format="json")

    assert response.status_code == 403
    assert "payload" not in response.content.decode()


FAST_CASES = [
    ({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer", "minimum": 1}}}, True),
    ({"properties": {"c": {"enum": ["EUR", "USD", None]}}, "additionalProperties": False}, True),
    ({"properties": {"n": {"enum": [1, 2]}}}, False),  # True == 1 in Python: left to jsonschema
    ({"properties": {"d": {"type": "string", "format": "date"}}}, False),
    ({"$defs": {"x": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/x", "minLength": 2}}}, False),
    ({"$defs": {"x": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/x"}}}, True),
    ({"prefixItems": [{"type": "string"}]}, False),
]
PAYLOADS = [
    {},
    {"a": 1},
    {"a": 0},
    {"a": True},
    {"a": 1.0},
    {"a": "xy"},
    {"a": "x"},
    {"c": "EUR"},
    {"c": None},
    {"c": "GBP"},
    {"n": True},
    {"n": 1},
    {"d": "not a date"},
    {"extra": 1},
    {"a": [1]},
]


@pytest.mark.parametrize(("schema", "fast"), FAST_CASES)
def test_the_fast_check_is_used_only_where_it_agrees_with_jsonschema(schema, fast):
    from jsonschema import Draft202012Validator

    from actions.intake import payload_schema_errors
    from policies.manifest import _fast_check

    check = _fast_check(schema)
    validator = Draft202012Validator(schema)

    assert (check is not None) == fast
    for payload in PAYLOADS:
        with_fast: dict = {}
        without: dict = {}
        payload_schema_errors(validator, payload, with_fast, check)
        payload_schema_errors(validator, payload, without)
        assert with_fast == without, payload
        assert (not without) == validator.is_valid(payload)


def test_the_demo_refund_schema_gets_the_fast_check(cast):
    assert current_policy()[1].action_types["refund.issue"].payload_fast_check is not None
