"""The execution engine run synchronously against a scripted integrator: each step outcome, the cascade's
levels, retries, durability across a killed worker, and what the rollback ends as."""

import pytest
from django.conf import settings

from actions.models import Action
from audit.models import AuditEvent
from rollback_console.errors import Conflict, Forbidden
from rollbacks import execution
from rollbacks.backoff import max_retry_delay, retry_delay, visibility_timeout
from rollbacks.models import Communication, RemediationTask, Rollback, Step
from tests.rollbacks.executing import WorkerKilled, authorized, chain, link, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import assert_audit_event, events, record

pytestmark = pytest.mark.django_db


def outcomes(rollback: Rollback) -> dict[str, str]:
    return {step.action.external_id + ("~loop" if step.is_loop else ""): step.outcome for step in rollback.steps.all()}


def state_of(action: Action) -> str:
    action.refresh_from_db()
    return action.state


def test_a_cascade_is_reversed_level_by_level_and_the_rollback_completes(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    refund, points, tier = chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    assert outcomes(rollback) == {"a-0": "reversed", "a-1": "reversed", "a-2": "reversed"}
    assert [(phase, external_id) for _, phase, external_id in shop.calls] == [
        ("check", "a-0"),
        ("reverse", "a-0"),
        ("verify", "a-0"),
        ("check", "a-1"),
        ("reverse", "a-1"),
        ("verify", "a-1"),
        ("check", "a-2"),
        ("reverse", "a-2"),
        ("verify", "a-2"),
    ]
    assert [state_of(action) for action in (refund, points, tier)] == ["reversed"] * 3
    # A compensation per step, then the trigger's notice for the target, each keyed by its communication.
    assert [n["template"] for n in shop.notifications] == [
        "refund_reversed",
        "points_revoked",
        "tier_restored",
        "rollback_customer_request",
    ]
    assert all(n["idempotency_key"].startswith("notify-") for n in shop.notifications)
    assert set(Communication.objects.filter(rollback=rollback).values_list("status", flat=True)) == {"sent"}
    assert_audit_event("rollback.step.reversed", rollback_id=rollback.pk, action_id=tier.pk)
    assert_audit_event("rollback.completed", rollback_id=rollback.pk)


def test_every_attempt_and_outcome_is_audited_and_linked_to_the_action(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert step.attempts == 1 and step.phase == "verify"
    attempt = assert_audit_event("rollback.step.attempt", action_id=refund.pk, rollback_id=rollback.pk)
    assert '"attempt":1' in attempt.data
    assert_audit_event("action.state_changed", action_id=refund.pk, rollback_id=rollback.pk)


def test_an_irreversible_action_ends_not_reversible_with_a_remediation_task(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [wire] = chain(cast.shop, "wire.transfer")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [wire])
    worker()

    step = rollback.steps.get()
    assert step.outcome == "not_reversible" and shop.calls == []
    task = RemediationTask.objects.get(step=step)
    assert task.reason == "not_reversible" and "SWIFT MT192" in task.instructions
    assert state_of(wire) == "manual_remediation"
    rollback.refresh_from_db()
    assert rollback.state == "failed"
    assert_audit_event("remediation.opened", action_id=wire.pk)


def test_a_manual_method_routes_the_step_to_a_person_with_the_manifests_instructions(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [letter] = chain(cast.shop, "letter.send")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [letter])
    worker()

    step = rollback.steps.get()
    assert step.outcome == "not_reversible"
    task = RemediationTask.objects.get(step=step)
    assert (task.reason, task.instructions) == ("manual_method", "Call the customer and withdraw the letter.")


def test_unmet_prerequisites_stop_the_step_before_reverse_and_name_what_is_missing(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert step.outcome == "prerequisites_unmet"
    assert step.unmet == ["account_open"] and "account_open" in step.detail
    assert shop.phases("a-0") == ["check"]
    assert state_of(refund) == "reversal_failed"
    rollback.refresh_from_db()
    assert rollback.state == "failed"


def test_a_retried_step_can_still_bring_a_failed_rollback_to_completed(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    shop.script("refund.chargeback", "check", (200, {"status": "ok"}))
    step = rollback.steps.get()

    with django_capture_on_commit_callbacks(execute=True):
        execution.retry_step(rollback.pk, step.pk, actor=cast.carl)
    worker()

    step.refresh_from_db()
    rollback.refresh_from_db()
    assert (step.outcome, rollback.state) == ("reversed", "completed")
    assert state_of(refund) == "reversed"
    assert_audit_event("rollback.step.retried", actor="carl", rollback_id=rollback.pk)


def test_a_compensation_that_cannot_be_sent_leaves_the_reversal_standing_and_opens_a_task(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("notify", "refund_reversed", (400, {"detail": "unknown customer"}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert step.outcome == "compensation_failed"
    assert shop.phases("a-0") == ["check", "reverse", "verify"]
    compensation = Communication.objects.get(step=step, template="refund_reversed")
    assert (compensation.status, compensation.attempts) == ("failed", 1)  # a 4xx is not tried again
    assert "HTTP 400" in compensation.last_error
    assert RemediationTask.objects.get(step=step).reason == "compensation_failed"
    assert state_of(refund) == "reversed"
    rollback.refresh_from_db()
    assert rollback.state == "partially_completed"
    assert_audit_event("communication.failed", rollback_id=rollback.pk)


def test_resolving_the_last_step_by_hand_completes_a_partially_completed_rollback(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("notify", "refund_reversed", (400, {"detail": "unknown customer"}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    step = rollback.steps.get()

    with django_capture_on_commit_callbacks(execute=True):
        execution.resolve_step(rollback.pk, step.pk, actor=cast.carl, note="phoned the customer")
    worker()

    step.refresh_from_db()
    rollback.refresh_from_db()
    assert step.outcome == "manual_done" and "phoned the customer" in step.detail
    assert rollback.state == "completed"
    assert RemediationTask.objects.get(step=step).done_by == cast.carl
    assert state_of(refund) == "manually_resolved"
    assert_audit_event("remediation.done", actor="carl")


def test_completing_a_remediation_task_resolves_its_step(cast, shop, worker, django_capture_on_commit_callbacks):
    [wire] = chain(cast.shop, "wire.transfer")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [wire])
    worker()
    task = RemediationTask.objects.get(step__rollback=rollback)

    with pytest.raises(Forbidden):
        execution.complete_remediation(task.pk, actor=cast.audrey, note="looked at it")
    with django_capture_on_commit_callbacks(execute=True):
        execution.complete_remediation(task.pk, actor=cast.carl, note="the receiving bank returned the money")
    worker()

    task.refresh_from_db()
    assert task.done_by == cast.carl and task.note == "the receiving bank returned the money"
    rollback.refresh_from_db()
    assert rollback.steps.get().outcome == "manual_done" and rollback.state == "completed"
    assert state_of(wire) == "manually_resolved"
    with pytest.raises(Conflict):
        execution.complete_remediation(task.pk, actor=cast.carl, note="again")


def test_a_compensation_answered_503_is_sent_again_with_backoff(cast, shop, worker, django_capture_on_commit_callbacks):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("notify", "refund_reversed", (503, {}), (503, {}), (200, {}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    compensation = Communication.objects.get(template="refund_reversed", rollback=rollback)
    assert (compensation.status, compensation.attempts) == ("sent", 3)
    # Three deliveries of the step: the first called check and reverse, the last verify; the one that only
    # resent the message did not use up an attempt of the step's own.
    assert rollback.steps.get().attempts == 2
    assert worker.sync.delays[:2] == [retry_delay(1), retry_delay(2)]
    assert shop.phases("a-0") == ["check", "reverse", "verify"]  # reverse was not called again
    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_a_compensation_never_answering_fails_after_notify_max_attempts(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("notify", "refund_reversed", (0, {}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    compensation = Communication.objects.get(template="refund_reversed", rollback=rollback)
    assert (compensation.status, compensation.attempts) == ("failed", settings.NOTIFY_MAX_ATTEMPTS)
    assert rollback.steps.get().outcome == "compensation_failed"


def test_a_reversal_answered_503_twice_is_retried_to_success_and_every_attempt_counted(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "reverse", (503, {}), (503, {}), (200, {"status": "ok"}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert (step.outcome, step.attempts) == ("reversed", 3)
    # The check answered ok once and was not asked again; reverse was tried until it answered.
    assert shop.phases("a-0") == ["check", "reverse", "reverse", "reverse", "verify"]
    assert len(events("rollback.step.attempt", rollback_id=rollback.pk)) == 3
    assert worker.sync.delays == [retry_delay(1), retry_delay(2)]


def test_a_reversal_that_keeps_failing_transiently_fails_after_webhook_max_attempts(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "reverse", (502, {}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert (step.outcome, step.attempts) == ("failed", settings.WEBHOOK_MAX_ATTEMPTS)
    assert "gave up" in step.detail
    assert state_of(refund) == "reversal_failed"


def test_a_reversal_answered_400_fails_at_once(cast, shop, worker, django_capture_on_commit_callbacks):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "reverse", (400, {"status": "failed", "detail": "no such refund"}))

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = rollback.steps.get()
    assert (step.outcome, step.attempts) == ("failed", 1)
    assert "HTTP 400" in step.detail and worker.sync.delays == []


def test_a_failing_step_does_not_stop_the_others_and_the_rollback_ends_partially_completed(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    refund = record(cast.shop, "refund.issue", external_id="r-1")
    wire = record(cast.shop, "wire.transfer", external_id="w-1")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund, wire])
    worker()

    rollback.refresh_from_db()
    assert outcomes(rollback) == {"r-1": "reversed", "w-1": "not_reversible"}
    assert rollback.state == "partially_completed"


def test_a_step_resumed_after_its_worker_died_does_not_call_reverse_again(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "verify", WorkerKilled(), (200, {"status": "ok"}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    step = rollback.steps.get()

    with pytest.raises(WorkerKilled):
        worker()
    step.refresh_from_db()
    assert (step.outcome, step.phase) == ("pending", "reverse")  # the reversal answered and was recorded
    worker.sync.queue.clear()
    worker.sync.queue.append(("steps", [step.pk]))  # the broker delivers the task again
    worker()

    step.refresh_from_db()
    assert step.outcome == "reversed"
    assert shop.phases("a-0") == ["check", "reverse", "verify", "verify"]
    assert sum(shop.effects.values()) == 1


def test_running_a_finished_rollback_again_changes_nothing(cast, shop, worker, django_capture_on_commit_callbacks):
    refund, _points = chain(cast.shop, "refund.issue", "loyalty.points_grant")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    calls, last_seq = len(shop.calls), AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    step_ids = list(rollback.steps.values_list("pk", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        execution.run_rollback(rollback.pk)
        execution.run_steps(step_ids)
    worker()

    assert len(shop.calls) == calls
    assert AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() == last_seq


def test_an_action_already_reversed_by_another_rollback_ends_already_reversed_and_nothing_is_called(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    calls = len(shop.calls)

    again = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    step = again.steps.get()
    assert step.outcome == "already_reversed" and len(shop.calls) == calls
    again.refresh_from_db()
    assert again.state == "completed"


def test_a_step_whose_action_another_live_rollback_reversed_meanwhile_is_already_reversed(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    first = authorized(cast, django_capture_on_commit_callbacks, [refund])
    second = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker.sync.queue.clear()
    worker.sync.queue.append(("rollback", first.pk))
    worker()

    worker.sync.queue.append(("rollback", second.pk))
    worker()

    assert second.steps.get().outcome == "already_reversed"
    assert sum(shop.effects.values()) == 1


def test_a_cycle_ends_loop_stopped_naming_its_path_and_nothing_is_reversed_twice(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    tier, benefits, reinstate = chain(cast.shop, "tier.upgrade", "benefits.reevaluate", "membership.reinstate")
    link(reinstate, tier)  # the reinstatement re-applied the upgrade

    rollback = authorized(cast, django_capture_on_commit_callbacks, [tier])
    worker()

    rollback.refresh_from_db()
    assert outcomes(rollback) == {"a-0": "reversed", "a-1": "reversed", "a-2": "reversed", "a-0~loop": "loop_stopped"}
    loop = rollback.steps.get(is_loop=True)
    assert str(tier.pk) in loop.detail and str(reinstate.pk) in loop.detail
    assert sorted(shop.reversed_ids()) == ["a-0", "a-1", "a-2"]
    assert rollback.state == "partially_completed"
    assert state_of(tier) == "reversed"  # the action's own step decided it
    assert state_of(benefits) == "partially_reversed"  # its class is partial

    with django_capture_on_commit_callbacks(execute=True):
        execution.resolve_step(rollback.pk, loop.pk, actor=cast.carl, note="the upgrade is gone for good")
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_a_diamond_reverses_its_shared_action_once(cast, shop, worker, django_capture_on_commit_callbacks):
    refund = record(cast.shop, "refund.issue", external_id="r")
    points_a = record(cast.shop, "loyalty.points_grant", external_id="pa", caused_by=("r",))
    points_b = record(cast.shop, "loyalty.points_grant", external_id="pb", caused_by=("r",))
    record(cast.shop, "tier.upgrade", external_id="t", caused_by=("pa", "pb"))
    assert points_a and points_b

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    assert sorted(shop.reversed_ids()) == ["pa", "pb", "r", "t"]
    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_a_cascade_deeper_than_authorized_pauses_until_a_signer_confirms_it(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund, *_] = chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=1)
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "paused"
    assert outcomes(rollback) == {"a-0": "reversed", "a-1": "reversed", "a-2": "awaiting_confirmation"}
    assert "a-2" not in {external_id for _, _, external_id in shop.calls}

    with django_capture_on_commit_callbacks(execute=True):
        execution.confirm_cascade(rollback.pk, actor=cast.carl)
    worker()

    rollback.refresh_from_db()
    assert (rollback.state, rollback.confirmed_depth) == ("completed", 2)
    assert outcomes(rollback)["a-2"] == "reversed"
    assert_audit_event("rollback.cascade_confirmed", actor="carl", rollback_id=rollback.pk)


def test_depth_zero_reverses_the_targets_alone_and_confirming_to_a_depth_goes_there_at_once(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade")
    refund = Action.objects.get(external_id="a-0")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=0)
    worker()
    assert outcomes(rollback) == {"a-0": "reversed", "a-1": "awaiting_confirmation", "a-2": "awaiting_confirmation"}

    with django_capture_on_commit_callbacks(execute=True):
        execution.confirm_cascade(rollback.pk, actor=cast.carl, depth=2)
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_the_trigger_notifies_internal_people_by_email_before_the_rollback_completes(
    cast, shop, worker, django_capture_on_commit_callbacks, mailoutbox
):
    [refund] = chain(cast.shop, "refund.issue")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], trigger="reviewer_error")
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    [mail] = mailoutbox
    assert mail.to == ["rollbacks@example.com"] and f"Rollback #{rollback.pk}" in mail.subject
    # Identifiers read as the console shows them, not as stored.
    assert mail.subject == f"Rollback #{rollback.pk} (Reviewer error): Rollback reviewer error"
    assert "trigger Reviewer error" in mail.body and "reviewer_error" not in mail.body
    internal = Communication.objects.get(rollback=rollback, audience="internal")
    assert (internal.channel, internal.status, internal.attempts) == ("email", "sent", 1)
    assert_audit_event("communication.sent", rollback_id=rollback.pk)


def test_an_unreachable_mail_server_is_tried_again_and_the_rollback_waits_communicating(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    import smtplib

    from rollbacks import communications

    def unreachable(*args, **kwargs):
        raise smtplib.SMTPServerDisconnected("connection refused")

    monkeypatch.setattr(communications, "send_mail", unreachable)
    [refund] = chain(cast.shop, "refund.issue")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], trigger="reviewer_error")
    worker()

    internal = Communication.objects.get(rollback=rollback, audience="internal")
    assert (internal.status, internal.attempts) == ("failed", settings.NOTIFY_MAX_ATTEMPTS)
    rollback.refresh_from_db()
    assert rollback.state == "partially_completed"  # every step reversed, but a communication did not go out


def test_the_longest_retry_delay_stays_below_the_brokers_visibility_timeout():
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    longest = max(retry_delay(attempt) for attempt in range(1, 50))
    assert longest == max_retry_delay() < timeout == visibility_timeout()


def test_the_stalled_sweeper_queues_a_rollback_that_recorded_nothing_for_a_while(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    [refund] = chain(cast.shop, "refund.issue")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker.sync.queue.clear()  # the task was lost
    Rollback.objects.filter(pk=rollback.pk).update(state="executing")

    assert execution.resume_stalled_rollbacks(stalled_after=timedelta(hours=1)) == []
    with django_capture_on_commit_callbacks(execute=True):
        resumed = execution.resume_stalled_rollbacks(stalled_after=timedelta(0))
    worker()

    assert resumed == [rollback.pk]
    rollback.refresh_from_db()
    assert rollback.state == "completed"


def test_the_queries_a_step_costs_do_not_grow_with_the_rollbacks_size(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_per_step(count: int, prefix: str) -> float:
        targets = [record(cast.shop, "record.update", external_id=f"{prefix}-{i}") for i in range(count)]
        rollback = authorized(cast, django_capture_on_commit_callbacks, targets)
        worker.sync.queue.clear()
        with django_capture_on_commit_callbacks(execute=True):
            execution.run_rollback(rollback.pk)
        step_ids = list(Step.objects.filter(rollback=rollback).values_list("pk", flat=True))
        with CaptureQueriesContext(connection) as queries:
            execution.run_steps(step_ids)
        worker.sync.queue.clear()
        return len(queries) / count

    assert queries_per_step(40, "big") <= queries_per_step(5, "small")


def test_a_step_of_an_unknown_rollback_task_is_ignored():
    assert execution.run_steps([10**9]).runs == []


def test_a_message_travels_outside_any_transaction_and_a_claimed_one_is_not_sent_twice(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import connection

    from rollbacks import communications

    [refund] = chain(cast.shop, "refund.issue")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], trigger="reviewer_error")
    internal_mail = []
    test_transaction = len(connection.atomic_blocks)  # the test's own, rolled back at its end

    def deliver(communication, manifest, calls=None):
        # The same database may serve the receiver: no write lock may be held while the message travels.
        assert len(connection.atomic_blocks) == test_transaction
        if communication.audience == "internal":
            internal_mail.append(communication.pk)
            # Another worker picks up the same message while this one is still sending it.
            assert communications.send_communication(communication.pk).retry_in > 0
        return None, False

    monkeypatch.setattr(communications, "_deliver", deliver)
    worker()

    rollback.refresh_from_db()
    internal = Communication.objects.get(rollback=rollback, audience="internal")
    assert rollback.state == "completed"
    assert internal_mail == [internal.pk]
    assert (internal.status, internal.attempts, internal.claimed_until) == ("sent", 1, None)
