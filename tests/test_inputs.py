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
