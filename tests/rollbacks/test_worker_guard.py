"""Authorization holds below the API: whatever message reaches a worker, it reverses, checks, verifies or
compensates a step only while the rollback is executing, within the confirmed depth and after the engine queued
the step, and sends a rollback's messages only once it is communicating. A refused attempt calls nothing,
moves nothing, is audited and is not retried."""

import json
from dataclasses import dataclass

import pytest
from django.core import mail

from actions.models import Action
from audit.models import AuditEvent
from policies.selectors import policy_of
from rollback_console.celery import app as celery_app
from rollbacks import announcements, communications, execution, services, tasks
from rollbacks.models import AnnouncementDelivery, Communication, Rollback, Step
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import events

pytestmark = pytest.mark.django_db

# The packages whose Celery tasks are ours: every task registered from them must be injected below.
OUR_PACKAGES = {"actions", "audit", "console", "demo_shop", "policies", "rollback_console", "rollbacks"}


@dataclass
class Target:
    """A rollback no worker may advance, and what a hand-made message could name of it."""

    rollback: Rollback
    step_ids: list[int]
    communication_ids: list[int]
    delivery_ids: list[int]


# How each task of ours is called with a target's ids; a task missing here fails the test below.
INJECTIONS = {
    "rollbacks.tasks.run_rollback": lambda target: [(target.rollback.pk,)],
    "rollbacks.tasks.execute_steps": lambda target: [(target.step_ids,), *[([pk],) for pk in target.step_ids]],
    "rollbacks.tasks.send_communication": lambda target: [(pk,) for pk in target.communication_ids],
    "rollbacks.tasks.resume_stalled_rollbacks": lambda target: [()],
    "rollbacks.tasks.send_integrator_events": lambda target: [(target.rollback.pk,), ("1; drop",), (-1,)],
    "rollbacks.tasks.announce_inbox_items": lambda target: [()],
    "rollbacks.tasks.send_announcement": lambda target: [*[(pk,) for pk in target.delivery_ids], ("1; drop",), (-1,)],
    "audit.tasks.anchor_audit_head": lambda target: [()],
    "audit.tasks.deliver_audit_anchors": lambda target: [()],
    "audit.tasks.verify_audit_trail": lambda target: [()],
    "audit.tasks.flush_access_failures": lambda target: [()],
}
# The tasks that name no rollback: they leave these rollbacks alone and have no attempt on them to audit. Integrator
# events are not guarded by state (the contract): a message can only deliver the events transitions already wrote.
# Announcing only tells people of items their inboxes hold: a hand-made run finds every item told already, and a
# hand-made delivery sends what was announced at most once, or names nothing (audited, without a rollback).
WITHOUT_IDS = {
    "rollbacks.tasks.resume_stalled_rollbacks",
    "audit.tasks.anchor_audit_head",
    "audit.tasks.deliver_audit_anchors",
    "audit.tasks.verify_audit_trail",
    "audit.tasks.flush_access_failures",
    "rollbacks.tasks.send_integrator_events",
    "rollbacks.tasks.announce_inbox_items",
    "rollbacks.tasks.send_announcement",
}


def our_tasks() -> list[str]:
    celery_app.loader.import_default_modules()
    return sorted(name for name in celery_app.tasks if name.split(".")[0] in OUR_PACKAGES)


def owed_compensation(step: Step) -> Communication:
    """The customer message a step's reversal would owe, opened by the engine's own service: what a forged
    `send_communication` would want sent."""
    manifest = policy_of(step.rollback.policy_version_id)
    policy = manifest.action_type(step.action.action_type)
    assert policy is not None and policy.compensations
    [opened] = communications.open_compensations(step, policy.compensations, manifest)
    return opened


def requested(cast, prefix: str) -> Rollback:  # type: ignore[no-untyped-def]
    refund, _points = chain(cast.shop, "refund.issue", "loyalty.points_grant", prefix=prefix)
    return services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="disputed", actions=[refund.pk]
    )


def target_of(rollback: Rollback) -> Target:
    steps = list(rollback.steps.select_related("action").order_by("pk"))
    pending = [step for step in steps if step.outcome in ("pending", "awaiting_confirmation")]
    opened = owed_compensation(pending[0])  # a message a forger would want sent
    communication_ids = sorted(
        {opened.pk, *Communication.objects.filter(rollback=rollback).values_list("pk", flat=True)}
    )
    deliveries = AnnouncementDelivery.objects.filter(announcement__rollback=rollback).values_list("pk", flat=True)
    return Target(rollback, [step.pk for step in steps], communication_ids, sorted(deliveries))


@pytest.fixture
def targets(cast, shop, worker, django_capture_on_commit_callbacks) -> dict[str, Target]:
    pending = requested(cast, "pending")
    rejected = requested(cast, "rejected")
    services.sign_off(rejected.pk, signer=cast.carl, decision="reject")
    [refund, *_] = chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade", prefix="paused")
    paused = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=0)
    worker()
    # Everything waiting was announced and told when the test begins: the messages below must add nothing.
    with django_capture_on_commit_callbacks(execute=True):
        announcements.announce_inbox_items()
    for pk in AnnouncementDelivery.objects.values_list("pk", flat=True):
        announcements.send_announcement(pk)
    mail.outbox.clear()
    found = {}
    for name, rollback in {"pending_authorization": pending, "rejected": rejected, "paused": paused}.items():
        rollback.refresh_from_db()
        assert rollback.state == name
        found[name] = target_of(rollback)
    shop.calls.clear()
    shop.notifications.clear()
    return found


def snapshot(rollback: Rollback) -> tuple:
    rollback.refresh_from_db()
    steps = tuple(rollback.steps.order_by("pk").values_list("outcome", "phase", "attempts", "started_at"))
    messages = tuple(rollback.communications.order_by("pk").values_list("status", "attempts", "claimed_until"))
    actions = tuple(
        Action.objects.filter(rollback_steps__rollback=rollback).order_by("pk").values_list("state", flat=True)
    )
    return rollback.state, rollback.confirmed_depth, steps, messages, actions


def test_every_task_of_ours_is_injected_by_the_test_below():
    assert our_tasks() == sorted(INJECTIONS)


@pytest.mark.parametrize("state", ["pending_authorization", "rejected", "paused"])
@pytest.mark.parametrize("task_name", sorted(INJECTIONS))
def test_a_hand_made_message_of_any_task_calls_nothing_moves_nothing_and_is_audited(
    task_name,
    state,
    targets,
    shop,
    worker,
    mailoutbox,
    django_capture_on_commit_callbacks,
    settings,
    tmp_path,
    monkeypatch,
):
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors.jsonl")
    celery_app.loader.import_default_modules()  # the registry holds a task once its module was imported
    told: list[str] = []
    monkeypatch.setattr(
        "rollbacks.events.post_signed",
        lambda url, body, secret, idempotency_key: told.append(idempotency_key) or (200, b""),
    )
    target = targets[state]
    owed = {
        f"event-{target.rollback.pk}-{event}"
        for event in target.rollback.integrator_events.values_list("event", flat=True)
    }
    before = snapshot(target.rollback)
    last_seq = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()

    for args in INJECTIONS[task_name](target):
        with django_capture_on_commit_callbacks(execute=True):
            result = celery_app.tasks[task_name].apply(args=args)
        assert result.successful(), result.traceback
        assert not worker.sync.queue, "nothing is queued for the workers"

    assert shop.calls == [] and shop.notifications == [] and mailoutbox == []
    assert set(told) <= owed, "only the events its transitions wrote reach the integrator"
    assert snapshot(target.rollback) == before
    if task_name not in WITHOUT_IDS:
        refusals = events(seq__gt=last_seq, rollback_id=target.rollback.pk, kind__endswith="refused")
        assert refusals
        assert {(event.actor, json.loads(event.data)["task"]) for event in refusals} == {("system", task_name)}


def started(cast, worker, capture, *, prefix: str, depth: int | None = None) -> Rollback:  # type: ignore[no-untyped-def]
    """refund -> points, authorized and started: the refund's level is queued (not yet run), the points wait."""
    refund, _points = chain(cast.shop, "refund.issue", "loyalty.points_grant", prefix=prefix)
    rollback = authorized(cast, capture, [refund], depth=depth)
    assert worker.sync.queue.popleft() == ("rollback", rollback.pk)
    with capture(execute=True):
        execution.run_rollback(rollback.pk)
    rollback.refresh_from_db()
    assert rollback.state == "executing"
    return rollback


def inject(task_name: str, *args, **options):  # type: ignore[no-untyped-def]
    result = celery_app.tasks[task_name].apply(args=args, **options)
    assert result.successful(), result.traceback
    return result


def refusal(**filters) -> dict:  # type: ignore[no-untyped-def]
    [event] = events(kind__endswith="refused", **filters)
    return {"actor": event.actor, "kind": event.kind, **json.loads(event.data)}


def test_a_step_of_the_next_level_is_refused_while_the_level_before_runs(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    rollback = started(cast, worker, django_capture_on_commit_callbacks, prefix="next")
    points = rollback.steps.get(depth=1)
    retried = []
    monkeypatch.setattr(tasks.execute_steps_task, "apply_async", lambda *a, **kw: retried.append(a))

    inject("rollbacks.tasks.execute_steps", [points.pk], headers={"periodic_task_name": "every minute"})

    assert shop.calls == [] and retried == []
    assert refusal(rollback_id=rollback.pk) | {"message": None} == {
        "actor": "system",
        "kind": "rollback.step.refused",
        "reason": "the engine has not queued this step",
        "steps": [points.pk],
        "count": 1,
        "task": "rollbacks.tasks.execute_steps",
        "message": None,
        "periodic_task": "every minute",
    }
    worker()  # the engine's own messages still run the rollback to its end, in order
    rollback.refresh_from_db()
    assert rollback.state == "completed" and shop.reversed_ids() == ["next-0", "next-1"]


def test_a_step_beyond_the_confirmed_depth_is_refused_while_the_rollback_executes(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    rollback = started(cast, worker, django_capture_on_commit_callbacks, prefix="deep", depth=0)
    points = rollback.steps.get(depth=1)

    inject("rollbacks.tasks.execute_steps", [points.pk])

    assert shop.calls == []
    assert refusal(rollback_id=rollback.pk)["reason"] == "depth 1 is beyond the confirmed depth 0"
    points.refresh_from_db()
    assert (points.outcome, points.attempts) == ("pending", 0)


def test_a_message_naming_steps_of_two_rollbacks_is_refused_whole(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    first = started(cast, worker, django_capture_on_commit_callbacks, prefix="one")
    worker.sync.queue.clear()
    second = started(cast, worker, django_capture_on_commit_callbacks, prefix="two")
    queued = [first.steps.get(depth=0).pk, second.steps.get(depth=0).pk]

    inject("rollbacks.tasks.execute_steps", queued)

    assert shop.calls == []
    for rollback in (first, second):
        assert refusal(rollback_id=rollback.pk)["reason"] == "the message names steps of more than one rollback"


def test_a_run_of_a_rollback_cancelled_before_the_worker_took_it_is_refused(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue", prefix="cancelled")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    services.cancel_rollback(rollback.pk, actor=cast.shop)

    worker()

    assert shop.calls == []
    assert refusal(rollback_id=rollback.pk)["reason"] == "the rollback is cancelled"
    assert rollback.steps.get().started_at is None


@pytest.mark.parametrize("argument", [["1", None], "12", [2**70], [10**9], None, [True]])
def test_a_malformed_or_unknown_steps_message_is_refused_without_an_error(argument, shop):
    inject("rollbacks.tasks.execute_steps", argument)

    assert shop.calls == []
    assert refusal(rollback_id=None)["kind"] == "rollback.step.refused"


def test_a_step_retried_in_a_paused_rollback_runs_once_the_cascade_is_confirmed(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    refund, _points = chain(cast.shop, "refund.issue", "loyalty.points_grant", prefix="held")
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=0)
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "paused"
    shop.script("refund.chargeback", "check", (200, {"status": "ok"}))

    with django_capture_on_commit_callbacks(execute=True):
        execution.retry_step(rollback.pk, rollback.steps.get(depth=0).pk, actor=cast.carl)
    assert not worker.sync.queue, "a paused rollback waits for the confirmation"
    with django_capture_on_commit_callbacks(execute=True):
        execution.confirm_cascade(rollback.pk, actor=cast.carl)
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    assert not events(kind__endswith="refused")


@pytest.mark.parametrize(
    ("task_name", "kind"),
    [
        ("rollbacks.tasks.run_rollback", "rollback.run_refused"),
        ("rollbacks.tasks.send_communication", "rollback.communication.refused"),
    ],
)
@pytest.mark.parametrize("argument", [10**9, "1", None, 2**70, [1]])
def test_a_run_or_message_naming_nothing_that_exists_is_refused_without_an_error(task_name, kind, argument, shop):
    inject(task_name, argument)

    assert shop.calls == [] and shop.notifications == []
    assert refusal(rollback_id=None)["kind"] == kind


def test_a_compensation_of_a_step_the_engine_has_not_queued_is_not_sent(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    rollback = started(cast, worker, django_capture_on_commit_callbacks, prefix="early")
    owed = owed_compensation(rollback.steps.get(depth=1))

    inject("rollbacks.tasks.send_communication", owed.pk)

    assert shop.notifications == []
    owed.refresh_from_db()
    assert (owed.status, owed.attempts) == ("pending", 0)
    assert refusal(rollback_id=rollback.pk) | {"message": None} == {
        "actor": "system",
        "kind": "rollback.communication.refused",
        "reason": "the engine has not queued this step",
        "communication": owed.pk,
        "task": "rollbacks.tasks.send_communication",
        "message": None,
    }
