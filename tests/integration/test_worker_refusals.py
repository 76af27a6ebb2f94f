"""A hand-made message on the broker reaches a real worker (prefork, Redis, PostgreSQL) for a rollback nobody
authorized: the integrator hears nothing, the rollback stays as it was, and the trail names the refusal."""

import json

import pytest
from django.db import connection

from audit.models import AuditEvent
from rollback_console.celery import app as celery_app
from rollbacks import services
from tests.integration.conftest import wait_until
from tests.integration.test_worker_execution import authorize, chain, outcomes, settled

pytestmark = [
    pytest.mark.worker,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="real workers run against PostgreSQL"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("receiver_policy"),
]


def refusals_of(rollback) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return list(AuditEvent.objects.filter(rollback_id=rollback.pk, kind__endswith="refused").order_by("seq"))


def test_a_hand_made_send_task_for_a_pending_rollback_reaches_the_worker_and_calls_nothing(
    cast, receiver, running_worker
):
    [refund, _points] = chain(cast, "refund.issue", "loyalty.points_grant", prefix="forged")
    rollback = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="disputed", actions=[refund.pk]
    )
    step_ids = list(rollback.steps.values_list("pk", flat=True))

    # What the attacker did: no service, no sign-off, straight onto the broker.
    celery_app.send_task("rollbacks.tasks.execute_steps", args=[step_ids])
    celery_app.send_task("rollbacks.tasks.run_rollback", args=[rollback.pk])
    refusals = wait_until(
        lambda: len(refusals_of(rollback)) >= 2 and refusals_of(rollback),
        timeout=30,
        message=lambda: running_worker.log()[-3000:],
    )

    assert receiver.state.calls == [] and receiver.state.notifications == []
    assert sorted((event.kind, json.loads(event.data)["task"]) for event in refusals) == [
        ("rollback.run_refused", "rollbacks.tasks.run_rollback"),
        ("rollback.step.refused", "rollbacks.tasks.execute_steps"),
    ]
    assert all(json.loads(event.data)["message"] for event in refusals)  # the broker message's id, to trace it
    rollback.refresh_from_db()
    assert rollback.state == "pending_authorization"
    assert set(outcomes(rollback).values()) == {"pending"}
    assert not rollback.steps.filter(started_at__isnull=False).exists()

    # Signed the ordinary way afterwards, the same rollback runs once, in order.
    services.sign_off(rollback.pk, signer=cast.carl, decision="approve")
    settled(rollback, running_worker)
    assert rollback.state == "completed"
    assert {receiver.reverse_calls("forged-0"), receiver.reverse_calls("forged-1")} == {1}


def test_a_replayed_steps_message_after_a_rejection_calls_nothing(cast, receiver, running_worker):
    [refund] = chain(cast, "refund.issue", prefix="rejected")
    rollback = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="disputed", actions=[refund.pk]
    )
    services.sign_off(rollback.pk, signer=cast.carl, decision="reject", comment="not a dispute")

    celery_app.send_task("rollbacks.tasks.execute_steps", args=[list(rollback.steps.values_list("pk", flat=True))])
    wait_until(
        lambda: refusals_of(rollback),
        timeout=30,
        message=lambda: running_worker.log()[-3000:],
    )

    assert receiver.state.calls == []
    rollback.refresh_from_db()
    assert rollback.state == "rejected"


def test_the_engine_s_own_messages_are_never_refused(cast, receiver, running_worker):
    [refund, *_] = chain(cast, "refund.issue", "loyalty.points_grant", "tier.upgrade", prefix="ordinary")
    rollback = settled(authorize(cast, [refund]), running_worker)

    assert rollback.state == "completed"
    assert refusals_of(rollback) == []
