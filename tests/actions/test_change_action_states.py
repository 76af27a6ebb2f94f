import pytest

from actions.models import Action
from actions.services import change_action_states
from rollback_console.errors import Conflict, Invalid
from tests.actions.conftest import audit_events

pytestmark = pytest.mark.django_db


def test_states_change_in_bulk_with_one_audit_event_per_action(recorded):
    first, second = recorded(), recorded()

    change_action_states({first.pk: "rollback_pending", second.pk: "rollback_pending"}, actor="carl", rollback_id=7)

    assert set(Action.objects.values_list("state", flat=True)) == {"rollback_pending"}
    events = audit_events("action.state_changed")
    assert [(e.action_id, e.rollback_id, e.actor) for e in events] == [(first.pk, 7, "carl"), (second.pk, 7, "carl")]
    assert events[0].data == '{"from":"executed","to":"rollback_pending"}'


def test_an_action_already_in_its_target_state_is_left_alone_and_not_audited(recorded):
    action = recorded()
    change_action_states({action.pk: "rollback_pending"}, actor="system", rollback_id=1)

    change_action_states({action.pk: "rollback_pending"}, actor="system", rollback_id=2)

    assert len(audit_events("action.state_changed")) == 1


def test_a_forbidden_move_changes_nothing_at_all(recorded):
    pending, fresh = recorded(), recorded()
    change_action_states({pending.pk: "rollback_pending"}, actor="system", rollback_id=1)

    with pytest.raises(Conflict) as refused:
        change_action_states({pending.pk: "reversed", fresh.pk: "reversed"}, actor="system", rollback_id=1)

    assert f"action {fresh.pk}: executed -> reversed" in refused.value.message
    assert Action.objects.get(pk=pending.pk).state == "rollback_pending"
    assert Action.objects.get(pk=fresh.pk).state == "executed"


def test_a_reversed_action_can_be_included_in_another_rollback(recorded):
    action = recorded()
    change_action_states({action.pk: "rollback_pending"}, actor="system", rollback_id=1)
    change_action_states({action.pk: "reversed"}, actor="system", rollback_id=1)

    change_action_states({action.pk: "rollback_pending"}, actor="system", rollback_id=2)
    change_action_states({action.pk: "reversed"}, actor="system", rollback_id=2)

    assert Action.objects.get(pk=action.pk).state == "reversed"


def test_an_unknown_action_is_refused(recorded):
    with pytest.raises(Invalid):
        change_action_states({987654: "rollback_pending"}, actor="system", rollback_id=None)


def test_no_changes_is_no_work(django_assert_num_queries):
    with django_assert_num_queries(0):
        change_action_states({}, actor="system", rollback_id=None)
