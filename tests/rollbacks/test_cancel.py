import pytest

from actions.models import Action, ActionState
from rollback_console.errors import Conflict, Forbidden
from rollbacks.models import Rollback, RollbackState
from rollbacks.services import cancel_rollback, request_rollback, sign_off
from rollbacks.transitions import transition_rollback
from tests.rollbacks.requesting import assert_audit_event, record

pytestmark = pytest.mark.django_db


def file(cast, requester=None, actions=None):
    actions = actions or [record(cast.shop)]
    return request_rollback(
        requester=requester or cast.shop,
        trigger="customer_request",
        reason="x",
        actions=[action.pk for action in actions],
    )


def test_the_requester_may_cancel_a_pending_request_and_its_actions_go_back(cast):
    refund = record(cast.shop)
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    rollback = file(cast, actions=[refund])

    rollback = cancel_rollback(rollback.pk, actor=cast.shop)

    assert rollback.state == "cancelled" and rollback.finished_at is not None
    assert set(Action.objects.filter(pk__in=[refund.pk, points.pk]).values_list("state", flat=True)) == {"executed"}
    assert_audit_event("rollback.cancelled", rollback_id=rollback.pk, actor="shop")


def test_a_signing_role_holder_may_cancel_an_authorized_request_before_execution(cast):
    rollback = file(cast)
    sign_off(rollback.pk, signer=cast.carl, decision="approve")

    assert cancel_rollback(rollback.pk, actor=cast.carl).state == "cancelled"


@pytest.mark.parametrize("username", ["alice", "vera", "ines", "audrey", "other_shop", "nobody"])
def test_anyone_else_may_not_cancel_and_the_refusal_is_audited(cast, username):
    rollback = file(cast)

    with pytest.raises(Forbidden):
        cancel_rollback(rollback.pk, actor=getattr(cast, username))

    assert Rollback.objects.get(pk=rollback.pk).state == "pending_authorization"
    assert_audit_event("rollback.refused", rollback_id=rollback.pk, actor=username)


@pytest.mark.parametrize("state", [RollbackState.EXECUTING, RollbackState.REJECTED, RollbackState.CANCELLED])
def test_once_execution_starts_or_the_request_ended_cancel_is_a_conflict(cast, state):
    rollback = file(cast)
    sign_off(rollback.pk, signer=cast.carl, decision="approve")
    if state == RollbackState.EXECUTING:
        transition_rollback(rollback.pk, state, actor="worker")
    else:
        rollback = file(cast)
        if state == RollbackState.REJECTED:
            sign_off(rollback.pk, signer=cast.carl, decision="reject")
        else:
            cancel_rollback(rollback.pk, actor=cast.shop)

    with pytest.raises(Conflict, match="only until execution starts"):
        cancel_rollback(rollback.pk, actor=cast.shop)

    assert_audit_event("rollback.refused", rollback_id=rollback.pk, actor="shop")


def test_an_action_another_live_request_includes_stays_pending(cast):
    refund = record(cast.shop)
    first = file(cast, actions=[refund])
    request_rollback(requester=cast.ines, trigger="incident", reason="y", actions=[refund.pk])

    cancel_rollback(first.pk, actor=cast.shop)

    assert Action.objects.get(pk=refund.pk).state == ActionState.ROLLBACK_PENDING


def test_an_action_whose_other_request_has_ended_goes_back(cast):
    refund = record(cast.shop)
    first = file(cast, actions=[refund])
    second = request_rollback(requester=cast.ines, trigger="incident", reason="y", actions=[refund.pk])
    cancel_rollback(second.pk, actor=cast.ines)

    cancel_rollback(first.pk, actor=cast.shop)

    assert Action.objects.get(pk=refund.pk).state == ActionState.EXECUTED


def test_cancelling_an_unknown_rollback_is_a_conflict(cast):
    with pytest.raises(Conflict):
        cancel_rollback(10**9, actor=cast.shop)
