import pytest

from actions.models import Action
from audit.models import AuditEvent
from policies.selectors import current_policy
from rollbacks.models import Rollback, Step
from tests.actions.conftest import action_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/"


@pytest.fixture
def shop_actions(recorded, cast):
    return {
        "refund": recorded(external_id="r/refund", subject="customer:1", executed_at="2026-11-01T10:00:00Z"),
        "points": recorded(
            external_id="r/points",
            action_type="loyalty.points_grant",
            subject="customer:1",
            caused_by=["r/refund"],
            executed_at="2026-11-02T10:00:00Z",
            approved_by="bob",
        ),
        "email": recorded(
            external_id="r/email", action_type="email.send", subject="customer:2", executed_at="2026-11-03T10:00:00Z"
        ),
        "theirs": recorded(cast.other_shop, external_id="o/refund", subject="customer:1"),
    }


def _ids(response):
    return {item["external_id"] for item in response.json()["results"]}


def test_an_integrator_lists_only_the_actions_it_recorded(client_for, cast, shop_actions):
    response = client_for(cast.shop).get(URL)

    assert response.status_code == 200
    assert _ids(response) == {"r/refund", "r/points", "r/email"}
    assert response.json()["count"] == 3


@pytest.mark.parametrize("reader", ["alice", "vera", "carl", "ines", "paula", "lena", "eddie", "audrey"])
def test_every_role_but_integrator_reads_every_action(client_for, cast, shop_actions, reader):
    response = client_for(getattr(cast, reader)).get(URL)

    assert response.status_code == 200
    assert _ids(response) == {"r/refund", "r/points", "r/email", "o/refund"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("action_type=refund.issue", {"r/refund"}),
        ("subject=customer:1", {"r/refund", "r/points"}),
        ("state=executed", {"r/refund", "r/points", "r/email"}),
        ("state=reversed", set()),
        ("approved_by=bob", {"r/points"}),
        ("executed_after=2026-11-02T10:00:00Z", {"r/points", "r/email"}),
        ("executed_before=2026-11-02T10:00:00Z", {"r/refund"}),
        ("executed_after=2026-11-01T12:00:00Z&executed_before=2026-11-03T00:00:00Z", {"r/points"}),
        ("external_id=r/email", {"r/email"}),
    ],
)
def test_the_list_filters_as_the_contract_says(client_for, cast, shop_actions, query, expected):
    response = client_for(cast.shop).get(f"{URL}?{query}")

    assert response.status_code == 200
    assert _ids(response) == expected


def test_the_list_filters_by_policy_version_id(client_for, cast, shop_actions):
    version_id = current_policy()[0]

    assert _ids(client_for(cast.shop).get(f"{URL}?policy_version={version_id}")) == {"r/refund", "r/points", "r/email"}
    assert _ids(client_for(cast.shop).get(f"{URL}?policy_version={version_id + 1000}")) == set()


def test_times_in_filters_may_carry_any_offset(client_for, cast, shop_actions):
    response = client_for(cast.shop).get(f"{URL}?executed_after=2026-11-02T23:00:00%2B14:00")

    assert _ids(response) == {"r/points", "r/email"}


@pytest.mark.parametrize(
    "query",
    [
        "state=gone",
        "policy_version=abc",
        "policy_version=1e400",
        "policy_version=99999999999999999999",
        "policy_version=0",
        "executed_after=yesterday",
        "executed_before=2026-13-01",
        "executed_after=9999-12-31T23:59:59-23:00",
        "executed_before=0001-01-01T00:00:00%2B05:00",
        "subject=%00",
    ],
)
def test_an_invalid_filter_value_is_a_400_naming_the_filter(client_for, cast, query):
    response = client_for(cast.audrey).get(f"{URL}?{query}")

    assert response.status_code == 400
    assert query.split("=")[0] in response.json()


def test_the_list_is_paginated(client_for, cast, shop_actions):
    data = client_for(cast.shop).get(f"{URL}?limit=2").json()

    assert set(data) == {"count", "next", "previous", "results"}
    assert data["count"] == 3 and len(data["results"]) == 2 and data["next"]


def test_the_detail_shows_what_caused_it_what_it_caused_and_its_rollbacks(client_for, cast, shop_actions):
    refund = shop_actions["refund"]
    rollback = Rollback.objects.create(
        trigger="customer_request",
        reason="customer says so",
        requested_by=cast.carl,
        policy_version_id=refund.policy_version_id,
        max_cascade_depth=3,
        confirmed_depth=3,
    )
    Step.objects.create(rollback=rollback, action=refund, depth=0, outcome="reversed")

    refund_data = client_for(cast.carl).get(f"{URL}{refund.pk}/").json()
    points_data = client_for(cast.shop).get(f"{URL}{shop_actions['points'].pk}/").json()

    assert refund_data["causes"] == ["r/points"] and refund_data["caused_by"] == []
    assert refund_data["rollbacks"] == [
        {"id": rollback.pk, "trigger": "customer_request", "state": "pending_authorization", "outcome": "reversed"}
    ]
    assert points_data["caused_by"] == ["r/refund"] and points_data["causes"] == [] and points_data["rollbacks"] == []


def test_another_integrators_action_is_not_found(client_for, cast, shop_actions):
    response = client_for(cast.shop).get(f"{URL}{shop_actions['theirs'].pk}/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_or_malformed_id_is_not_found(client_for, cast):
    assert client_for(cast.audrey).get(f"{URL}999999/").status_code == 404
    assert client_for(cast.audrey).get(f"{URL}abc/").status_code == 404
    assert client_for(cast.audrey).get(f"{URL}{2**64}/").status_code == 404
    assert client_for(cast.audrey).get(f"{URL}{2**64}/reversal-preview/").status_code == 404


def test_a_user_without_a_role_may_not_read_actions_and_the_refusal_is_audited(client_for, cast, shop_actions):
    client = client_for(cast.nobody)

    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{shop_actions['refund'].pk}/").status_code == 403
    assert AuditEvent.objects.filter(kind="auth.forbidden", actor="nobody").count() == 2


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("post", ""),
        ("post", "batch/"),
        ("get", "{id}/"),
        ("post", "{id}/links/"),
        ("get", "{id}/reversal-preview/"),
    ],
)
def test_every_actions_endpoint_refuses_an_anonymous_caller_with_401(client_for, shop_actions, method, path):
    url = URL + path.format(id=shop_actions["refund"].pk)

    response = getattr(client_for(None), method)(url, {}, format="json")

    assert response.status_code == 401


def test_the_action_types_endpoint_refuses_anonymous_and_roleless_callers(client_for, cast):
    assert client_for(None).get("/api/v1/action-types/").status_code == 401
    assert client_for(cast.nobody).get("/api/v1/action-types/").status_code == 403


@pytest.mark.parametrize("user", ["alice", "audrey", "nobody", "carl"])
def test_only_integrators_record_actions(client_for, cast, user):
    client = client_for(getattr(cast, user))

    assert client.post(URL, action_body(), format="json").status_code == 403
    assert client.post(f"{URL}batch/", {"actions": [action_body()]}, format="json").status_code == 403
    assert not Action.objects.exists()
