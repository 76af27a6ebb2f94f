from datetime import UTC, datetime
from decimal import Decimal

import pytest

from actions.models import Action, ActionLink
from actions.services import record_action
from audit.models import AuditEvent
from policies.selectors import current_policy
from rollback_console.errors import Conflict, Invalid
from tests.actions.conftest import action_body, audit_events

pytestmark = pytest.mark.django_db
URL = "/api/v1/actions/"


def test_an_integrator_records_an_action_and_gets_back_everything_sent_with_its_reversibility(client_for, cast):
    body = action_body(external_id="run-42/refund-1")
    response = client_for(cast.shop).post(URL, body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    action = Action.objects.get(pk=data["id"])
    for key in ("external_id", "action_type", "subject", "payload", "approved_by", "approval_context", "caused_by"):
        assert data[key] == body[key]
    assert data["executed_at"] == "2026-11-28T10:00:00Z"
    assert data["approved_at"] == "2026-11-28T09:59:30Z"
    assert data["state"] == "executed"
    assert data["policy_version"] == current_policy()[0]
    assert data["integrator"] == "shop"
    assert data["reversibility"] == {
        "class": "full",
        "method": "webhook",
        "prerequisites": ["account_open"],
        "window_ends_at": "2026-12-28T10:00:00Z",
        "side_effects": ["the customer is charged back the refunded amount"],
    }
    assert data["amount"] == "25.0000"
    assert action.integrator == cast.shop and action.approved_by == cast.alice
    assert action.window_ends_at == datetime(2026, 12, 28, 10, tzinfo=UTC)


def test_recording_writes_the_approval_and_the_policy_version_to_the_audit_trail(cast):
    action, _ = record_action(cast.shop, action_body(approval_context={"ticket": "T-1"}))

    (event,) = audit_events("action.recorded", action_id=action.pk)
    assert event.actor == "shop"
    assert '"approved_by":"alice"' in event.data
    assert '"context":{"ticket":"T-1"}' in event.data
    assert f'"policy_version":{{"id":{action.policy_version_id},"label":"demo-2026-11"}}' in event.data


def test_the_same_body_again_returns_the_same_action_with_200_and_records_nothing_more(client_for, cast):
    client = client_for(cast.shop)
    body = action_body()
    first = client.post(URL, body, format="json")
    events = AuditEvent.objects.count()

    again = client.post(URL, body, format="json")

    assert again.status_code == 200
    assert again.json() == first.json()
    assert Action.objects.filter(external_id=body["external_id"]).count() == 1
    assert AuditEvent.objects.count() == events


def test_the_same_body_with_keys_reordered_another_offset_and_causes_reordered_is_a_replay(cast, recorded):
    recorded(external_id="a")
    recorded(external_id="b")
    action, created = record_action(cast.shop, action_body(external_id="c", caused_by=["a", "b"]))
    assert created

    same = dict(reversed(list(action_body(external_id="c", caused_by=["b", "a"]).items())))
    same["executed_at"] = "2026-11-28T11:00:00+01:00"
    replayed, created = record_action(cast.shop, same)

    assert (replayed.pk, created) == (action.pk, False)


def test_a_different_body_with_the_same_external_id_is_a_409_and_changes_nothing(client_for, cast):
    client = client_for(cast.shop)
    body = action_body()
    first = client.post(URL, body, format="json").json()
    counts = (Action.objects.count(), ActionLink.objects.count(), AuditEvent.objects.count())

    response = client.post(URL, {**body, "subject": "customer:1002"}, format="json")

    assert response.status_code == 409
    assert body["external_id"] in response.json()["detail"]
    assert Action.objects.get(pk=first["id"]).subject == "customer:1001"
    assert (Action.objects.count(), ActionLink.objects.count(), AuditEvent.objects.count()) == counts


def test_two_integrators_may_use_the_same_external_id(cast):
    mine, _ = record_action(cast.shop, action_body(external_id="shared"))
    theirs, created = record_action(cast.other_shop, action_body(external_id="shared", subject="other"))

    assert created and mine.pk != theirs.pk


def test_caused_by_links_the_action_to_earlier_actions_of_the_same_integrator(client_for, cast, recorded):
    upstream = recorded(external_id="run-7/order")
    response = client_for(cast.shop).post(
        URL,
        action_body(external_id="run-7/points", action_type="loyalty.points_grant", caused_by=["run-7/order"]),
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["caused_by"] == ["run-7/order"]
    assert ActionLink.objects.filter(upstream=upstream, downstream_id=response.json()["id"]).exists()
    (event,) = audit_events("action.recorded", action_id=response.json()["id"])
    assert f'"caused_by":[{{"external_id":"run-7/order","id":{upstream.pk}}}]' in event.data


def test_caused_by_naming_another_integrators_action_is_refused_by_name(cast, recorded):
    recorded(cast.other_shop, external_id="theirs")
    recorded(external_id="mine")

    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(caused_by=["mine", "theirs", "nowhere"]))

    assert refused.value.errors == {"caused_by": ["Not recorded by this integrator: 'theirs', 'nowhere'."]}


def test_an_action_cannot_name_itself_as_its_cause(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(external_id="self", caused_by=["self"]))

    assert "caused_by" in refused.value.errors


def test_an_approver_who_is_not_a_user_is_refused(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(approved_by="mallory"))

    assert refused.value.errors == {"approved_by": ["No user is named 'mallory'."]}


def test_an_action_type_the_current_policy_does_not_declare_is_refused(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(action_type="refund.teleport"))

    assert "not an action type of the current policy (demo-2026-11)" in refused.value.errors["action_type"][0]


def test_the_reversibility_is_frozen_from_the_policy_for_each_class(cast):
    wire, _ = record_action(cast.shop, action_body(action_type="wire.transfer", payload={"amount": 1200}))
    benefits, _ = record_action(cast.shop, action_body(action_type="benefits.reevaluate"))

    assert (wire.reversibility, wire.reversal_method, wire.window_ends_at) == ("irreversible", "manual", None)
    assert wire.amount == Decimal("1200.0000")
    assert (benefits.reversibility, benefits.reversal_method, benefits.amount) == ("partial", "python", None)


@pytest.mark.parametrize(
    ("value", "amount"),
    [("25.5", Decimal("25.5000")), (7, Decimal("7.0000")), (0.125, Decimal("0.1250")), ("0", Decimal("0.0000"))],
)
def test_the_amount_is_read_from_the_policys_amount_field_when_it_is_a_number(cast, value, amount):
    action, _ = record_action(cast.shop, action_body(payload={"amount": value}))

    assert action.amount == amount


@pytest.mark.parametrize("value", ["lots", True, {"v": 1}, None, "NaN", "-3", -3, -0.5, "1e3", " 5", ""])
def test_an_amount_that_is_not_a_non_negative_decimal_is_refused_naming_its_place(cast, value):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(payload={"amount": value}))

    assert refused.value.errors["payload/amount"] == [
        'Expected a non-negative decimal, as a string such as "12.50" or as a number.'
    ]
    assert not Action.objects.exists()


def test_a_payload_without_the_policys_amount_field_is_refused(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(action_type="wire.transfer", payload={"iban": "DE89"}))

    assert refused.value.errors == {
        "payload/amount": ["This field is required: wire.transfer reads its amount from it."]
    }


def test_an_amount_too_large_to_store_is_refused_rather_than_cut(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(payload={"amount": "100000000000000000000"}))

    assert refused.value.errors["payload/amount"] == ["Too large for an amount (at most 14 digits before the point)."]


def test_an_execution_time_too_late_for_its_window_is_refused(cast):
    with pytest.raises(Invalid) as refused:
        record_action(cast.shop, action_body(executed_at="9999-12-20T00:00:00Z"))

    assert "executed_at" in refused.value.errors


def test_a_conflicting_replay_through_the_service_raises_conflict(cast):
    record_action(cast.shop, action_body(external_id="x"))

    with pytest.raises(Conflict):
        record_action(cast.shop, action_body(external_id="x", approved_by="bob"))


def test_python_callers_may_pass_aware_datetimes(cast):
    action, created = record_action(
        cast.shop,
        action_body(
            executed_at=datetime(2026, 11, 28, 10, tzinfo=UTC), approved_at=datetime(2026, 11, 28, 9, tzinfo=UTC)
        ),
    )

    assert created and action.executed_at == datetime(2026, 11, 28, 10, tzinfo=UTC)


def test_a_replay_shows_the_action_as_it_is_now_links_learned_later_included(client_for, cast, recorded):
    from actions.services import add_links

    recorded(external_id="later-cause")
    body = action_body(external_id="effect", action_type="loyalty.points_grant")
    client = client_for(cast.shop)
    client.post(URL, body, format="json")
    add_links(Action.objects.get(external_id="later-cause"), ["effect"], actor="shop")

    again = client.post(URL, body, format="json")

    assert again.status_code == 200
    assert again.json()["caused_by"] == ["later-cause"]
