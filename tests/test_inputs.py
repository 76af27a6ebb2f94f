"""Crafted input is a 400 naming what is wrong, never a 500 (issue 8): nesting, dates, NUL characters."""

import pytest
from rest_framework.test import APIClient

from rollbacks.services import request_rollback
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 100 + "1" + "}" * 100


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def filed(cast):
    action = record(cast.shop)
    return request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[action.pk])


def post_raw(client: APIClient, path: str, raw: str):
    return client.post(path, data=raw, content_type="application/json")


@pytest.mark.parametrize("raw", [DEEP, DEEP_OBJECT])
def test_a_deeply_nested_rollback_request_is_a_400_saying_so(cast, raw):
    response = post_raw(client_for(cast.carl), "/api/v1/rollbacks/", raw)

    assert response.status_code == 400
    assert "nested deeper than 64 levels" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", ["signoffs", "confirm-cascade"])
def test_a_deeply_nested_body_on_a_rollback_transition_is_a_400(cast, endpoint):
    rollback = filed(cast)

    response = post_raw(client_for(cast.carl), f"/api/v1/rollbacks/{rollback.pk}/{endpoint}/", DEEP)

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_a_deeply_nested_action_payload_is_a_400(cast):
    body = (
        '{"external_id": "deep", "action_type": "refund.issue", "subject": "customer:1", "payload": '
        + DEEP_OBJECT
        + ', "executed_at": "2026-11-28T10:00:00Z", "approved_by": "alice", "approved_at": "2026-11-28T09:00:00Z"}'
    )

    response = post_raw(client_for(cast.shop), "/api/v1/actions/", body)

    assert response.status_code == 400
    assert "nested deeper" in response.json()["detail"]


def test_nesting_within_the_limit_is_accepted_by_the_parser(cast):
    within = '{"trigger": "customer_request", "reason": "x", "actions": [], "extra": ' + "[" * 60 + "]" * 60 + "}"

    response = post_raw(client_for(cast.carl), "/api/v1/rollbacks/", within)

    assert response.status_code == 400
    assert "nested" not in str(response.json())


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-13-45T00:00"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"until": "9999-12-31T23:59:59-05:00"}, "until"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),
        ({"since": "0001-01-01"}, "since"),
        ({"until": "2026-11-28T10:00:00+99:00"}, "until"),
        ({"since": "2026-11-28T25:00"}, "since"),
        ({"since": "yesterday"}, "since"),
    ],
)
def test_a_metrics_period_out_of_range_or_malformed_is_a_400_naming_the_parameter(cast, params, field):
    response = client_for(cast.audrey).get("/api/v1/metrics/", params)

    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"executed_after": "2026-13-45T00:00"}, "executed_after"),
        ({"executed_after": "0001-01-01T00:00:00+05:00"}, "executed_after"),
        ({"executed_before": "9999-12-31T23:59:59-05:00"}, "executed_before"),
        ({"policy_version": "99999999999999999999"}, "policy_version"),
    ],
)
def test_an_action_filter_out_of_range_is_a_400_naming_the_parameter(cast, params, field):
    response = client_for(cast.audrey).get("/api/v1/actions/", params)

    assert response.status_code == 400, response.content
    assert field in response.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "99999999999999999999"}, "action"),
        ({"after_seq": "-1"}, "after_seq"),
        ({"rollback": "x"}, "rollback"),
    ],
)
def test_an_audit_filter_out_of_range_is_a_400_naming_the_parameter(cast, params, field):
    response = client_for(cast.audrey).get("/api/v1/audit/events/", params)

    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_rollback_selector_with_a_date_out_of_range_is_a_400_naming_the_filter(cast):
    body = {"trigger": "incident", "reason": "x", "selector": {"executed_after": "0001-01-01T00:00:00+05:00"}}

    response = client_for(cast.ines).post("/api/v1/rollbacks/", body, format="json")

    assert response.status_code == 400, response.content
    assert "executed_after" in str(response.json())


def test_a_nul_in_a_sign_off_comment_is_a_400_naming_the_comment(cast):
    rollback = filed(cast)
    raw = '{"decision": "approve", "comment": "fine\\u0000"}'

    response = post_raw(client_for(cast.carl), f"/api/v1/rollbacks/{rollback.pk}/signoffs/", raw)

    assert response.status_code == 400
    assert response.json() == {"comment": ["Null characters are not allowed."]}


def test_a_nul_deep_in_an_action_payload_is_a_400_naming_the_field_and_its_json_pointer(cast):
    raw = (
        '{"external_id": "nul", "action_type": "refund.issue", "subject": "customer:1", '
        '"payload": {"amount": "1.00", "lines": [{"note": "x\\u0000"}]}, "executed_at": "2026-11-28T10:00:00Z", '
        '"approved_by": "alice", "approved_at": "2026-11-28T09:00:00Z"}'
    )

    response = post_raw(client_for(cast.shop), "/api/v1/actions/", raw)

    assert response.status_code == 400
    assert response.json() == {"payload": ["Null characters are not allowed (at payload/lines/0/note)."]}


def test_an_escaped_backslash_before_u0000_is_no_nul_and_is_accepted_by_the_parser(cast):
    rollback = filed(cast)
    raw = '{"decision": "reject", "comment": "a literal \\\\u0000 is text"}'

    response = post_raw(client_for(cast.vera), f"/api/v1/rollbacks/{rollback.pk}/signoffs/", raw)

    assert "Null characters" not in str(response.json())


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/actions/?subject=a%00b", "subject"),
        ("/api/v1/rollbacks/?state=%00", "state"),
        ("/api/v1/audit/events/?kind=rollback%00", "kind"),
        ("/api/v1/metrics/?since=2026-01-01%00", "since"),
    ],
)
def test_a_nul_in_a_query_string_is_a_400_naming_the_parameter(cast, path, field):
    response = client_for(cast.audrey).get(path)

    assert response.status_code == 400
    assert response.json() == {field: ["Null characters are not allowed."]}


def test_a_nul_in_the_consoles_action_search_is_a_400_naming_the_field(client, cast):
    client.force_login(cast.audrey)

    response = client.get("/console/actions/", {"q": "refund\x00"})

    assert response.status_code == 400
    assert response.content.decode() == "q: Null characters are not allowed."


def test_a_nul_in_a_console_sign_off_comment_is_a_400_and_nothing_is_signed(client, cast):
    rollback = filed(cast)
    client.force_login(cast.carl)

    response = client.post(f"/console/rollbacks/{rollback.pk}/signoff/", {"decision": "approve", "comment": "ok\x00"})

    assert response.status_code == 400
    assert response.content.decode() == "comment: Null characters are not allowed."
    assert not rollback.signoffs.exists()


def test_a_nul_in_an_idempotency_key_header_is_a_400_naming_the_header(cast):
    action = record(cast.shop)
    body = {"trigger": "customer_request", "reason": "x", "actions": [action.pk]}

    response = client_for(cast.carl).post("/api/v1/rollbacks/", body, format="json", HTTP_IDEMPOTENCY_KEY="k\x00")

    assert response.status_code == 400
    assert response.json() == {"Idempotency-Key": ["Null characters are not allowed."]}


def test_a_nul_in_a_batch_item_is_a_400_naming_the_item_by_index(cast):
    item = (
        '{"external_id": "b-%d", "action_type": "refund.issue", "subject": "customer:1", "payload": {"note": "%s"}, '
        '"executed_at": "2026-11-28T10:00:00Z", "approved_by": "alice", "approved_at": "2026-11-28T09:00:00Z"}'
    )
    raw = '{"actions": [' + item % (0, "fine") + ", " + item % (1, "bad\\u0000") + "]}"

    response = post_raw(client_for(cast.shop), "/api/v1/actions/batch/", raw)

    assert response.status_code == 400
    assert response.json() == {"actions": ["Null characters are not allowed (at actions/1/payload/note)."]}


def test_a_nul_in_a_form_encoded_api_body_is_a_400_naming_the_field(cast):
    action = record(cast.shop)
    body = {"trigger": "customer_request", "reason": "x\x00", "actions": [action.pk]}

    response = client_for(cast.carl).post("/api/v1/rollbacks/", body, format="multipart")

    assert response.status_code == 400
    assert response.json()["reason"] == ["Null characters are not allowed."]
