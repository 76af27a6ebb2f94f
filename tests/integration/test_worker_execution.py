"""Rollbacks executed by a real worker process on Redis against PostgreSQL, calling a real HTTP integrator."""

import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from actions.models import Action
from audit.models import AuditEvent
from rollbacks import execution, services, tasks
from rollbacks.models import Communication, RemediationTask, Rollback, RollbackState
from tests.integration.conftest import wait_until
from tests.rollbacks.requesting import record

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real workers run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("receiver_policy"),
]

RESTING = {
    RollbackState.PAUSED,
    RollbackState.COMPLETED,
    RollbackState.PARTIALLY_COMPLETED,
    RollbackState.FAILED,
}


def chain(cast, *action_types: str, prefix: str) -> list[Action]:
    actions: list[Action] = []
    for index, action_type in enumerate(action_types):
        caused_by = (actions[-1].external_id,) if actions else ()
        actions.append(record(cast.shop, action_type, caused_by=caused_by, external_id=f"{prefix}-{index}"))
    return actions


def authorize(cast, targets: list[Action], *, depth: int | None = None) -> Rollback:
    """Filed by the shop for its customer and signed by customer service: the worker takes it on commit."""
    rollback = services.request_rollback(
        requester=cast.shop,
        trigger="customer_request",
        reason="the customer disputes it",
        actions=[action.pk for action in targets],
        max_cascade_depth=depth,
    )
    services.sign_off(rollback.pk, signer=cast.carl, decision="approve")
    return rollback


def settled(rollback: Rollback, worker, *, timeout: float = 30) -> Rollback:
    def resting() -> bool:
        rollback.refresh_from_db()
        return (
            rollback.state in RESTING
            and not rollback.communications.filter(status="pending").exists()
            and not rollback.integrator_events.filter(status="pending").exists()
        )

    wait_until(resting, timeout=timeout, message=lambda: f"{rollback.state}\n{worker.log()[-3000:]}")
    return rollback


def outcomes(rollback: Rollback) -> dict[str, str]:
    return {s.action.external_id + ("~loop" if s.is_loop else ""): s.outcome for s in rollback.steps.all()}


def assert_each_reversal_applied_once(receiver, external_ids: list[str]) -> None:
    assert receiver.state.bad_signatures == 0
    assert {external_id: len(receiver.state.reversed_by.get(external_id, ())) for external_id in external_ids} == {
        external_id: 1 for external_id in external_ids
    }
    assert set(receiver.state.effects.values()) == {1}


def test_a_three_level_cascade_is_reversed_signed_and_notified(cast, receiver, running_worker):
    refund, points, tier = chain(cast, "refund.issue", "loyalty.points_grant", "tier.upgrade", prefix="c")

    rollback = settled(authorize(cast, [refund]), running_worker)

    assert rollback.state == "completed"
    assert outcomes(rollback) == {"c-0": "reversed", "c-1": "reversed", "c-2": "reversed"}
    assert_each_reversal_applied_once(receiver, ["c-0", "c-1", "c-2"])
    assert sorted(n["template"] for n in receiver.state.notifications) == [
        "points_revoked",
        "refund_reversed",
        "rollback_customer_request",
        "tier_restored",
    ]
    assert {action.state for action in Action.objects.filter(pk__in=[refund.pk, points.pk, tier.pk])} == {"reversed"}


def test_each_failure_mode_ends_in_its_documented_outcome(cast, receiver, running_worker):
    wire = record(cast.shop, "wire.transfer", external_id="f-wire")
    closed = record(cast.shop, "refund.issue", external_id="f-closed")
    unreachable = record(cast.shop, "refund.issue", external_id="f-unreachable")
    tier, _benefits, reinstate = chain(cast, "tier.upgrade", "benefits.reevaluate", "membership.reinstate", prefix="f")
    receiver.script("f-closed", "check", {"status": "unmet", "unmet": ["account_open"]})
    receiver.script("refund_reversed", "notify", 400)
    client = APIClient()
    client.force_authenticate(cast.shop)
    response = client.post(f"/api/v1/actions/{reinstate.pk}/links/", {"causes": [tier.external_id]}, format="json")
    assert response.status_code == 200, response.content

    rollback = settled(authorize(cast, [wire, closed, unreachable, tier]), running_worker)

    assert outcomes(rollback) == {
        "f-wire": "not_reversible",
        "f-closed": "prerequisites_unmet",
        "f-unreachable": "compensation_failed",
        "f-0": "reversed",
        "f-1": "reversed",
        "f-2": "reversed",
        "f-0~loop": "loop_stopped",
    }
    assert rollback.state == "partially_completed"
    assert sorted(RemediationTask.objects.filter(step__rollback=rollback).values_list("reason", flat=True)) == [
        "compensation_failed",
        "not_reversible",
    ]
    assert rollback.steps.get(action=closed).unmet == ["account_open"]
    assert receiver.reverse_calls("f-closed") == 0 and receiver.reverse_calls("f-wire") == 0
    assert_each_reversal_applied_once(receiver, ["f-unreachable", "f-0", "f-1", "f-2"])


def test_a_rollback_run_twice_changes_nothing_the_second_time(cast, receiver, running_worker):
    [refund, _points] = chain(cast, "refund.issue", "loyalty.points_grant", prefix="t")
    rollback = settled(authorize(cast, [refund]), running_worker)
    calls, head = len(receiver.state.calls), AuditEvent.objects.order_by("-seq").values_list("seq", flat=True)[0]

    tasks.run_rollback_task.delay(rollback.pk)
    tasks.execute_steps_task.delay(list(rollback.steps.values_list("pk", flat=True)))
    for communication in Communication.objects.filter(rollback=rollback):
        tasks.send_communication_task.delay(communication.pk)
    time.sleep(2)  # time enough for the worker to take and finish them

    assert len(receiver.state.calls) == calls
    assert AuditEvent.objects.order_by("-seq").values_list("seq", flat=True)[0] == head
    assert receiver.state.events == [
        f"event-{rollback.pk}-rollback.{event}" for event in ("requested", "authorized", "completed")
    ], "each event once, in order, through a real worker"
    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_a_receiver_answering_503_twice_then_200_is_retried_to_success(cast, receiver, running_worker):
    [refund] = chain(cast, "refund.issue", prefix="r")
    receiver.script("r-0", "reverse", 503, 503)
    receiver.script("rollback_customer_request", "notify", 503, 503)  # the trigger's notice, a task of its own

    rollback = settled(authorize(cast, [refund]), running_worker)

    step = rollback.steps.get()
    assert (step.outcome, step.attempts) == ("reversed", 3)
    assert receiver.reverse_calls("r-0") == 3
    assert_each_reversal_applied_once(receiver, ["r-0"])
    notice = rollback.communications.get(template="rollback_customer_request")
    assert (notice.status, notice.attempts) == ("sent", 3)
    assert rollback.state == "completed"


def test_a_receiver_answering_400_is_not_retried(cast, receiver, running_worker):
    [refund] = chain(cast, "refund.issue", prefix="b")
    receiver.script("b-0", "reverse", 400)

    rollback = settled(authorize(cast, [refund]), running_worker)

    step = rollback.steps.get()
    assert (step.outcome, step.attempts) == ("failed", 1)
    assert receiver.reverse_calls("b-0") == 1
    assert rollback.state == "failed"


@pytest.mark.parametrize("round_", [1, 2])
@pytest.mark.parametrize("kill_at", ["k-0", "k-1", "k-2"])
def test_a_worker_killed_mid_cascade_is_replaced_and_each_reversal_takes_effect_once(
    cast, receiver, running_worker, kill_at, round_
):
    chain(cast, "refund.issue", "loyalty.points_grant", "tier.upgrade", prefix="k")
    hold = receiver.hold_at(kill_at, "reverse")

    rollback = authorize(cast, [Action.objects.get(external_id="k-0")])
    assert hold.reached.wait(timeout=30), running_worker.log()[-3000:]
    running_worker.kill()  # the reversal took effect at the integrator; its answer never arrives
    receiver.release()
    running_worker.start()

    settled(rollback, running_worker, timeout=60)
    assert rollback.state == "completed"
    assert outcomes(rollback) == {"k-0": "reversed", "k-1": "reversed", "k-2": "reversed"}
    assert receiver.reverse_calls(kill_at) >= 2  # the redelivered task asked again, with the same key
    assert_each_reversal_applied_once(receiver, ["k-0", "k-1", "k-2"])


def test_a_cascade_authorized_to_depth_one_pauses_after_level_one_and_finishes_once_confirmed(
    cast, receiver, running_worker
):
    types = ("refund.issue", "loyalty.points_grant", "tier.upgrade", "benefits.reevaluate")
    [refund, *_] = chain(cast, *types, prefix="p")

    rollback = settled(authorize(cast, [refund], depth=1), running_worker)

    assert rollback.state == "paused"
    assert outcomes(rollback) == {
        "p-0": "reversed",
        "p-1": "reversed",
        "p-2": "awaiting_confirmation",
        "p-3": "awaiting_confirmation",
    }
    assert receiver.reverse_calls("p-2") == 0

    execution.confirm_cascade(rollback.pk, actor=cast.carl, depth=3)
    settled(rollback, running_worker)

    assert rollback.state == "completed"
    assert_each_reversal_applied_once(receiver, ["p-0", "p-1", "p-2", "p-3"])


def test_a_cycle_closed_through_the_links_endpoint_stops_and_reverses_nothing_twice(cast, receiver, running_worker):
    refund, points, tier, benefits, reinstate = chain(
        cast,
        "refund.issue",
        "loyalty.points_grant",
        "tier.upgrade",
        "benefits.reevaluate",
        "membership.reinstate",
        prefix="y",
    )
    client = APIClient()
    client.force_authenticate(cast.shop)
    assert client.post(f"/api/v1/actions/{reinstate.pk}/links/", {"causes": ["y-2"]}, format="json").status_code == 200

    rollback = settled(authorize(cast, [tier]), running_worker)

    assert outcomes(rollback) == {"y-2": "reversed", "y-3": "reversed", "y-4": "reversed", "y-2~loop": "loop_stopped"}
    assert "->" in rollback.steps.get(is_loop=True).detail
    assert_each_reversal_applied_once(receiver, ["y-2", "y-3", "y-4"])
    assert rollback.state == "partially_completed"
    assert refund and points and benefits


def test_a_diamond_reverses_its_shared_action_once(cast, receiver, running_worker):
    refund = record(cast.shop, "refund.issue", external_id="d-r")
    record(cast.shop, "loyalty.points_grant", external_id="d-a", caused_by=("d-r",))
    record(cast.shop, "loyalty.points_grant", external_id="d-b", caused_by=("d-r",))
    record(cast.shop, "tier.upgrade", external_id="d-t", caused_by=("d-a", "d-b"))

    rollback = settled(authorize(cast, [refund]), running_worker)

    assert rollback.state == "completed"
    assert_each_reversal_applied_once(receiver, ["d-r", "d-a", "d-b", "d-t"])
    assert receiver.reverse_calls("d-t") == 1
