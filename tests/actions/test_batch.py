from datetime import timedelta

import pytest

from actions.models import Action, ActionLink
from audit.models import AuditEvent
from tests.actions.conftest import action_body

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/batch/"


def _counts():
    return Action.objects.count(), ActionLink.objects.count(), AuditEvent.objects.count()


def test_a_batch_is_recorded_in_order_and_a_later_action_may_name_an_earlier_one(client_for, cast):
    actions = [
        action_body(external_id="b/refund"),
        action_body(external_id="b/points", action_type="loyalty.points_grant", caused_by=["b/refund"]),
        action_body(external_id="b/tier", action_type="tier.upgrade", caused_by=["b/points"]),
    ]

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["created"], data["replayed"]) == (3, 0)
    assert [a["external_id"] for a in data["actions"]] == ["b/refund", "b/points", "b/tier"]
    assert [a["caused_by"] for a in data["actions"]] == [[], ["b/refund"], ["b/points"]]
    ids = [a["id"] for a in data["actions"]]
    assert ids == sorted(ids)
    assert AuditEvent.objects.filter(kind="action.recorded", action_id__in=ids).count() == 3


def test_a_batch_with_one_bad_item_records_nothing_and_names_the_items_index(client_for, cast):
    counts = _counts()
    actions = [action_body() for _ in range(5)]
    actions[3]["approved_by"] = "mallory"
    actions[1]["executed_at"] = "2026-11-28T10:00:00"

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 400
    errors = response.json()["actions"]
    assert set(errors) == {"1"}  # shape errors come first; the lookups run only on well-formed batches
    assert "executed_at" in errors["1"]
    assert _counts() == counts


def test_a_batch_refers_to_the_failing_lookup_by_index(client_for, cast):
    counts = _counts()
    actions = [action_body() for _ in range(4)]
    actions[3]["approved_by"] = "mallory"
    actions[2]["caused_by"] = ["later"]
    actions[3]["external_id"] = "later"

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "actions": {
            "2": {"caused_by": ["Not recorded by this integrator (or not earlier in this batch): 'later'."]},
            "3": {"approved_by": ["No user is named 'mallory'."]},
        }
    }
    assert _counts() == counts


def test_a_batch_replayed_whole_returns_the_same_actions_with_200(client_for, cast):
    client = client_for(cast.shop)
    actions = [action_body(), action_body()]
    first = client.post(URL, {"actions": actions}, format="json").json()

    again = client.post(URL, {"actions": actions}, format="json")

    assert again.status_code == 200
    assert again.json()["actions"] == first["actions"]
    assert (again.json()["created"], again.json()["replayed"]) == (0, 2)


def test_a_batch_may_mix_replays_and_new_actions(client_for, cast):
    client = client_for(cast.shop)
    old = action_body()
    client.post("/api/v1/actions/", old, format="json")

    response = client.post(URL, {"actions": [old, action_body(caused_by=[old["external_id"]])]}, format="json")

    assert response.status_code == 201
    assert (response.json()["created"], response.json()["replayed"]) == (1, 1)


def test_a_batch_with_a_conflicting_replay_is_a_409_naming_the_index_and_records_nothing(client_for, cast):
    client = client_for(cast.shop)
    old = action_body()
    client.post("/api/v1/actions/", old, format="json")
    counts = _counts()

    response = client.post(URL, {"actions": [action_body(), {**old, "subject": "changed"}]}, format="json")

    assert response.status_code == 409
    assert "actions[1]" in response.json()["detail"]
    assert _counts() == counts


def test_the_same_external_id_twice_in_one_batch_is_refused(client_for, cast):
    body = action_body()

    response = client_for(cast.shop).post(URL, {"actions": [body, body]}, format="json")

    assert response.status_code == 400
    assert response.json()["actions"]["1"]["external_id"] == ["Repeats the external id of actions[0]."]


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"actions": []},
        {"actions": {}},
        {"actions": "x"},
        {"actions": None},
        {"actions": [1]},
        [],
        {"actions": [action_body()], "extra": 1},
    ],
)
def test_a_batch_that_is_not_a_list_of_actions_gets_a_400(client_for, cast, payload):
    response = client_for(cast.shop).post(URL, payload, format="json")

    assert response.status_code == 400, response.content


def test_a_batch_of_more_than_a_thousand_actions_is_refused(client_for, cast):
    response = client_for(cast.shop).post(URL, {"actions": [action_body() for _ in range(1001)]}, format="json")

    assert response.status_code == 400
    assert response.json() == {"actions": ["Send at most 1,000 actions at once."]}


def test_a_batch_body_over_sixteen_mebibytes_is_refused_with_413(client_for, cast):
    raw = b'{"actions": [' + b" " * (16 * 1024 * 1024) + b"]}"

    response = client_for(cast.shop).post(URL, raw, content_type="application/json")

    assert response.status_code == 413


def test_a_batch_body_over_one_mebibyte_is_fine(client_for, cast):
    actions = [action_body(payload={"amount": "1.00", "note": "x" * 2000}) for _ in range(600)]

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 201
    assert response.json()["created"] == 600


def test_a_batch_naming_more_than_ten_thousand_causes_is_refused(client_for, cast):
    names = [f"cause-{i}" for i in range(1000)]
    actions = [action_body(caused_by=names) for _ in range(11)]

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 400
    assert "At most 10,000 caused_by links in one batch" in response.json()["actions"][0]


def test_a_large_batch_stores_every_field_as_a_single_post_does(client_for, cast):
    awkward = {
        "amount": "12.5",
        "currency": "EUR",
        "note": 'a "quote", a \\ backslash,\ttab\nline ☃',
        "n": [1, 2.5, None],
    }
    single = client_for(cast.shop).post("/api/v1/actions/", action_body(payload=awkward), format="json").json()
    actions = [action_body(payload=awkward, approval_context={"ticket": f"T-{i}"}) for i in range(25)]

    response = client_for(cast.shop).post(URL, {"actions": actions}, format="json")

    assert response.status_code == 201
    fields = ["payload", "amount", "reversibility", "reversal_method", "prerequisites", "side_effects", "state"]
    one = Action.objects.values(*fields).get(pk=single["id"])
    stored = Action.objects.filter(pk__in=[a["id"] for a in response.json()["actions"]]).order_by("pk")
    assert [row for row in stored.values(*fields)] == [one] * 25
    assert [a.approval_context for a in stored] == [{"ticket": f"T-{i}"} for i in range(25)]
    assert {a.window_ends_at - a.executed_at for a in stored} == {timedelta(days=30)}
    assert all(a.recorded_at is not None for a in stored)
