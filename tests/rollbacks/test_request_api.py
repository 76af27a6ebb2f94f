from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from rollbacks.models import IdempotencyRecord, Rollback, Step
from rollbacks.services import request_rollback, sign_off
from tests.rollbacks.requesting import assert_audit_event, record

pytestmark = pytest.mark.django_db

URL = "/api/v1/rollbacks/"


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def body(action, **fields):
    return {"trigger": "customer_request", "reason": "customer says refund was wrong", "actions": [action.pk], **fields}


def filed(cast, requester=None, trigger="customer_request", action=None):
    action = action or record(cast.shop)
    return request_rollback(
        requester=requester or cast.shop, trigger=trigger, reason="x", actions=[action.pk], reference="R"
    )


def test_a_request_answers_201_with_the_rollback_as_get_shows_it(cast):
    refund = record(cast.shop)
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))

    response = client_for(cast.carl).post(URL, body(refund, max_cascade_depth=2, reference=None), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["state"] == "pending_authorization"
    assert data["queue"] == data["trigger"] == "customer_request"
    assert data["requested_by"] == "carl"
    assert data["reference"] is None
    assert data["max_cascade_depth"] == data["confirmed_depth"] == 2
    assert data["required_signoffs"] == [{"role": "customer_service", "count": 1, "given": 0}]
    assert data["plan"] == {
        "actions": 1,
        "cascade": 1,
        "irreversible": 0,
        "window_expired": 0,
        "already_reversed": 0,
        "action_ids": [refund.pk],
    }
    assert [(s["action"], s["depth"], s["outcome"], s["attempts"]) for s in data["steps"]] == [
        (refund.pk, 0, "pending", 0),
        (points.pk, 1, "pending", 0),
    ]
    assert data["communications"] == []
    assert data["created_at"].endswith("Z") or "+" in data["created_at"]
    assert client_for(cast.carl).get(f"{URL}{data['id']}/").json() == data


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"trigger": "whim"}, "trigger"),
        ({"trigger": None}, "trigger"),
        ({"reason": ""}, "reason"),
        ({"reason": None}, "reason"),
        ({"max_cascade_depth": 4}, "max_cascade_depth"),
        ({"max_cascade_depth": -1}, "max_cascade_depth"),
        ({"max_cascade_depth": "deep"}, "max_cascade_depth"),
        ({"selector": {"action_type": "refund.issue"}}, "non_field_errors"),
        ({"actions": [10**9]}, "actions"),
        ({"actions": 17}, "actions"),
        ({"actions": "17"}, "actions"),
        ({"actions": ["seventeen"]}, "actions"),
        ({"actions": [[1]]}, "actions"),
        ({"actions": []}, "actions"),
        ({"actions": [0]}, "actions"),
        ({"actions": [10**30]}, "actions"),
        ({"reference": ["R"]}, "reference"),
        ({"selector": "refund.issue", "actions": None}, "selector"),
        ({"selector": {"executed_after": "yesterday"}, "actions": None}, "selector"),
        ({"selector": {"colour": "red"}, "actions": None}, "selector"),
        ({"selector": {"subject": {"nested": 1}}, "actions": None}, "selector"),
        ({"selector": {"policy_version": 10**30}, "actions": None}, "selector"),
        ({"selector": {"policy_version": "v1"}, "actions": None}, "selector"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_input_answers_400_with_field_errors(cast, payload, field):
    refund = record(cast.shop)
    data = {k: v for k, v in {**body(refund), **payload}.items() if v is not None or k in ("reference",)}

    response = client_for(cast.carl).post(URL, data, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Rollback.objects.exists()


def test_a_missing_reference_answers_400(cast):
    refund = record(cast.shop)

    response = client_for(cast.lena).post(URL, body(refund, trigger="regulatory_order"), format="json")

    assert response.status_code == 400 and "reference" in response.json()


def test_another_integrators_action_is_unknown_to_an_integrator(cast):
    theirs = record(cast.other_shop)

    response = client_for(cast.shop).post(URL, body(theirs), format="json")

    assert response.status_code == 400
    assert response.json() == {"actions": [f"No action you may see has the id {theirs.pk}."]}


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"17", b"null", b"{not json"])
def test_a_body_that_is_not_an_object_answers_400(cast, raw):
    response = client_for(cast.carl).post(URL, raw, content_type="application/json")

    assert response.status_code == 400


def test_ids_past_64_bits_are_bad_input_even_from_someone_who_may_not_request(cast):
    refund = record(cast.shop)

    response = client_for(cast.vera).post(URL, {**body(refund), "actions": [refund.pk, 10**30]}, format="json")

    assert response.status_code == 400 and "actions" in response.json()
    response = client_for(cast.vera).post(URL, {**body(refund), "actions": [refund.pk, 2**63 - 1]}, format="json")
    assert response.status_code == 403


def test_a_role_that_may_not_request_answers_403_and_is_audited(cast):
    refund = record(cast.shop)

    response = client_for(cast.vera).post(URL, body(refund), format="json")

    assert response.status_code == 403
    assert "customer_service or integrator" in response.json()["detail"]
    assert_audit_event("rollback.refused", actor="vera", action_id=refund.pk)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("post", ""), ("get", "{id}/"), ("post", "{id}/signoffs/"), ("post", "{id}/cancel/")],
)
def test_every_endpoint_answers_401_without_credentials(cast, method, path):
    rollback = filed(cast)

    response = getattr(client_for(), method)(URL + path.format(id=rollback.pk), {}, format="json")

    assert response.status_code == 401


@pytest.mark.parametrize("username", ["vera", "ines", "other_shop", "nobody", "alice"])
def test_a_rollback_is_404_to_whom_it_is_not_shown(cast, username):
    rollback = filed(cast)
    client = client_for(getattr(cast, username))

    assert client.get(f"{URL}{rollback.pk}/").status_code == 404
    assert client.post(f"{URL}{rollback.pk}/signoffs/", {"decision": "approve"}, format="json").status_code == 404
    assert client.post(f"{URL}{rollback.pk}/cancel/").status_code == 404
    assert client.get(URL).json()["count"] == 0


def test_an_unknown_or_malformed_id_is_404(cast):
    client = client_for(cast.audrey)

    assert client.get(f"{URL}999999/").status_code == 404
    assert client.get(f"{URL}abc/").status_code == 404
    assert client.get(f"{URL}{10**30}/").status_code == 404
    assert client.post(f"{URL}{10**30}/signoffs/", {"decision": "approve"}, format="json").status_code == 404
    assert client.post(f"{URL}0/cancel/").status_code == 404


def test_an_auditor_sees_every_rollback_but_may_not_sign_or_cancel(cast):
    rollback = filed(cast)
    client = client_for(cast.audrey)

    assert client.get(f"{URL}{rollback.pk}/").status_code == 200
    assert client.get(URL).json()["count"] == 1
    signed = client.post(f"{URL}{rollback.pk}/signoffs/", {"decision": "approve"}, format="json")
    assert signed.status_code == 403
    assert client.post(f"{URL}{rollback.pk}/cancel/").status_code == 403
    assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="audrey")


def test_the_signing_roles_and_the_requester_see_it(cast):
    rollback = filed(cast, requester=cast.shop)

    for user in (cast.shop, cast.carl):
        assert client_for(user).get(f"{URL}{rollback.pk}/").status_code == 200


def test_an_expired_windows_executive_sees_the_request(cast):
    old = record(cast.shop, executed_at=timezone.now() - timedelta(days=60))
    rollback = filed(cast, action=old)

    assert client_for(cast.eddie).get(f"{URL}{rollback.pk}/").status_code == 200
    assert client_for(cast.eddie).get(f"{URL}{filed(cast).pk}/").status_code == 404


def test_a_signoff_answers_200_with_the_rollback(cast):
    rollback = filed(cast)

    response = client_for(cast.carl).post(
        f"{URL}{rollback.pk}/signoffs/", {"decision": "approve", "comment": "fine"}, format="json"
    )

    assert response.status_code == 200
    data = response.json()
    assert data["state"] == "authorized" and data["authorized_at"]
    assert data["required_signoffs"] == [{"role": "customer_service", "count": 1, "given": 1}]
    assert data["signoffs"][0] | {"at": None} == {
        "signer": "carl",
        "role": "customer_service",
        "decision": "approve",
        "comment": "fine",
        "at": None,
    }


def test_signing_off_ones_own_request_answers_403(cast):
    rollback = filed(cast, requester=cast.carl)

    response = client_for(cast.carl).post(f"{URL}{rollback.pk}/signoffs/", {"decision": "approve"}, format="json")

    assert response.status_code == 403 and "requested" in response.json()["detail"]


def test_a_second_signoff_answers_409_with_the_reason(cast):
    rollback = filed(cast, requester=cast.paula, trigger="policy_reversal")
    client = client_for(cast.lex)
    assert client.post(f"{URL}{rollback.pk}/signoffs/", {"decision": "approve"}, format="json").status_code == 200

    response = client.post(f"{URL}{rollback.pk}/signoffs/", {"decision": "approve"}, format="json")

    assert response.status_code == 409 and "one person counts once" in response.json()["detail"]


@pytest.mark.parametrize(
    "payload", [{}, {"decision": "maybe"}, {"decision": 1}, {"decision": "approve", "comment": ["x"]}]
)
def test_a_bad_signoff_body_answers_400(cast, payload):
    rollback = filed(cast)

    response = client_for(cast.carl).post(f"{URL}{rollback.pk}/signoffs/", payload, format="json")

    assert response.status_code == 400
    assert set(response.json()) <= {"decision", "comment"}


def test_cancel_answers_200_and_409_once_cancelled(cast):
    rollback = filed(cast)
    client = client_for(cast.shop)

    response = client.post(f"{URL}{rollback.pk}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"

    again = client.post(f"{URL}{rollback.pk}/cancel/")
    assert again.status_code == 409 and "cancelled" in again.json()["detail"]


def test_the_list_filters_by_state_and_trigger(cast):
    pending = filed(cast)
    authorized = filed(cast)
    sign_off(authorized.pk, signer=cast.carl, decision="approve")
    incident = filed(cast, requester=cast.ines, trigger="incident")
    client = client_for(cast.audrey)

    def ids(query):
        response = client.get(URL + query)
        assert response.status_code == 200
        return [item["id"] for item in response.json()["results"]]

    assert ids("") == [incident.pk, authorized.pk, pending.pk]
    assert ids("?state=authorized") == [authorized.pk]
    assert ids("?trigger=incident") == [incident.pk]
    assert ids("?state=pending_authorization&trigger=customer_request") == [pending.pk]
    assert set(client.get(URL).json()) == {"count", "next", "previous", "results"}


@pytest.mark.parametrize("query", ["?state=done", "?trigger=whim", "?queue=yours"])
def test_a_bad_list_filter_answers_400(cast, query):
    response = client_for(cast.audrey).get(URL + query)

    assert response.status_code == 400


def test_queue_mine_lists_what_waits_for_my_roles(cast):
    for_cs = filed(cast)
    for_cs_done = filed(cast)
    sign_off(for_cs_done.pk, signer=cast.carl, decision="approve")
    own = filed(cast, requester=cast.carl)
    for_legal = filed(cast, requester=cast.paula, trigger="policy_reversal")

    def queue(user):
        return [item["id"] for item in client_for(user).get(URL + "?queue=mine").json()["results"]]

    assert queue(cast.carl) == [for_cs.pk]
    assert own.pk not in queue(cast.carl)
    assert queue(cast.lena) == [for_legal.pk]
    assert queue(cast.audrey) == []
    sign_off(for_legal.pk, signer=cast.lena, decision="approve")
    assert queue(cast.lex) == []  # legal is filled, and lex's executive role is not asked
    assert queue(cast.paula) == []  # her own request


def test_retrieving_costs_the_same_queries_whatever_the_number_of_steps(cast):
    small = filed(cast)
    refund = record(cast.shop)
    for _ in range(40):
        record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    large = filed(cast, action=refund)
    assert Step.objects.filter(rollback=large).count() == 41
    client = client_for(cast.carl)

    counts = []
    for rollback in (small, large):
        client.get(f"{URL}{rollback.pk}/")  # warm the caches (content types, permissions)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"{URL}{rollback.pk}/").status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]


def test_an_idempotent_retry_gets_the_first_response_and_creates_nothing(cast):
    refund = record(cast.shop)
    client = client_for(cast.carl)

    first = client.post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    retry = client.post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert Rollback.objects.count() == 1


def test_the_same_key_with_another_body_answers_409(cast):
    refund = record(cast.shop)
    client = client_for(cast.carl)
    client.post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    response = client.post(URL, body(refund, reason="another reason"), format="json", HTTP_IDEMPOTENCY_KEY="k-2")

    assert response.status_code == 409
    assert Rollback.objects.count() == 1


def test_a_key_belongs_to_its_user(cast):
    refund = record(cast.shop)
    client_for(cast.carl).post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    response = client_for(cast.shop).post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-3")

    assert response.status_code == 201
    assert Rollback.objects.count() == 2


def test_a_refused_or_invalid_request_keeps_no_response_for_its_key(cast):
    refund = record(cast.shop)

    refused = client_for(cast.vera).post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    invalid = client_for(cast.carl).post(URL, body(refund, trigger="whim"), format="json", HTTP_IDEMPOTENCY_KEY="k-4")
    accepted = client_for(cast.carl).post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-4")

    assert (refused.status_code, invalid.status_code, accepted.status_code) == (403, 400, 201)
    assert_audit_event("rollback.refused", actor="vera")
    assert IdempotencyRecord.objects.filter(key="k-4").count() == 1


def test_a_key_older_than_a_day_may_be_used_afresh(cast):
    refund = record(cast.shop)
    client = client_for(cast.carl)
    client.post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k-5")
    IdempotencyRecord.objects.filter(key="k-5").update(created_at=timezone.now() - timedelta(hours=25))

    response = client.post(URL, body(refund, reason="new"), format="json", HTTP_IDEMPOTENCY_KEY="k-5")

    assert response.status_code == 201
    assert Rollback.objects.count() == 2


def test_an_overlong_key_answers_400(cast):
    refund = record(cast.shop)

    response = client_for(cast.carl).post(URL, body(refund), format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)

    assert response.status_code == 400 and "Idempotency-Key" in response.json()


def test_the_schema_documents_the_rollback_endpoints(cast):
    response = client_for(cast.audrey).get("/api/v1/schema/", {"format": "json"})

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in ("/api/v1/rollbacks/", "/api/v1/rollbacks/{id}/", "/api/v1/rollbacks/{id}/signoffs/"):
        assert path in paths
    assert "/api/v1/rollbacks/{id}/cancel/" in paths


@pytest.mark.parametrize("reference", [None, "", "   ", "absent"])
def test_a_request_without_a_reference_stores_and_answers_null(cast, reference):
    refund = record(cast.shop)
    fields = {} if reference == "absent" else {"reference": reference}

    response = client_for(cast.carl).post(URL, body(refund, **fields), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["reference"] is None
    assert Rollback.objects.get(pk=response.json()["id"]).reference is None
    assert client_for(cast.carl).get(f"{URL}{response.json()['id']}/").json()["reference"] is None


def test_a_given_reference_is_kept_as_sent_without_surrounding_spaces(cast):
    response = client_for(cast.carl).post(URL, body(record(cast.shop), reference=" ORD-7 "), format="json")

    assert response.json()["reference"] == "ORD-7"
