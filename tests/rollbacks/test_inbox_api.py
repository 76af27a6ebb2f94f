"""GET /api/v1/inbox/: the signed-in person's inbox, paginated like the other lists, filtered by kind and trigger;
a bad filter is a 400 naming it, no credentials a 401."""

import pytest
from rest_framework.test import APIClient

from rollbacks.services import request_rollback
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db

URL = "/api/v1/inbox/"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def reviewer_error(cast):
    action = record(cast.shop)
    return request_rollback(requester=cast.bob, trigger="reviewer_error", reason="x", actions=[action.pk])


def test_a_verifier_reads_their_sign_offs_as_contract_items(cast):
    rollback = reviewer_error(cast)

    response = client_for(cast.vera).get(URL)

    assert response.status_code == 200
    assert response.json()["count"] == 1 and response.json()["next"] is None
    [item] = response.json()["results"]
    assert {key: item[key] for key in ("kind", "rollback", "step", "task", "trigger")} == {
        "kind": "signoff",
        "rollback": rollback.pk,
        "step": None,
        "task": None,
        "trigger": "reviewer_error",
    }
    assert item["summary"] == "Sign off reversing refund.issue on customer:1001 (25.00 EUR)"
    assert item["since"] and item["window_closes_at"]


def test_the_list_is_paginated_and_filtered_by_kind(cast):
    for _ in range(3):
        reviewer_error(cast)
    client = client_for(cast.vera)

    page = client.get(URL, {"limit": 2}).json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert client.get(URL, {"kind": "signoff"}).json()["count"] == 3
    assert client.get(URL, {"kind": "step"}).json()["count"] == 0
    assert client.get(URL, {"trigger": "incident"}).json()["count"] == 0


def test_an_unknown_kind_or_trigger_is_refused_with_400_naming_it(cast):
    client = client_for(cast.vera)

    response = client.get(URL, {"kind": "everything"})
    assert response.status_code == 400 and "kind" in response.json()
    response = client.get(URL, {"trigger": "whim"})
    assert response.status_code == 400 and "trigger" in response.json()
    assert client.get(URL, {"limit": "lots"}).status_code == 400


def test_without_credentials_the_inbox_is_401(cast):
    assert client_for().get(URL).status_code == 401


def test_a_person_without_a_signing_role_gets_an_empty_inbox_not_someone_elses(cast):
    reviewer_error(cast)
    for person in (cast.nobody, cast.bob, cast.audrey, cast.shop):
        response = client_for(person).get(URL)
        assert response.status_code == 200 and response.json()["count"] == 0, person.username


def test_the_inbox_is_in_the_openapi_schema(cast):
    schema = client_for().get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/inbox/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"kind", "trigger", "limit", "offset"}
    assert "429" in operation["responses"]
