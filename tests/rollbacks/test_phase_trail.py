"""Every durable fact about a step is in the trail when it becomes durable: the engine queueing a level
(`started_at`, what the worker guard admits a step by), a step's checked prerequisites and its reversal answered
ok (`phase`), each in the transaction that writes it: one audit append per level or batch where the write is per
level or batch, one per step for the reversal, which is made durable step by step."""

import orjson
import pytest

from rollbacks.models import Rollback, Step
from tests.rollbacks.executing import WorkerKilled, authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import events

pytestmark = pytest.mark.django_db


def test_queueing_a_level_and_checking_a_step_are_in_the_trail_in_order(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    refund, points = chain(cast.shop, "refund.issue", "loyalty.points_grant")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    steps = {step.action_id: step.pk for step in Step.objects.filter(rollback=rollback)}
    queued = [orjson.loads(event.data) for event in events("rollback.steps.queued", rollback_id=rollback.pk)]
    assert queued == [
        {"depth": 0, "steps": [steps[refund.pk]], "count": 1},
        {"depth": 1, "steps": [steps[points.pk]], "count": 1},
    ]
    for action in (refund, points):
        kinds = [event.kind for event in events(rollback_id=rollback.pk, action_id=action.pk)]
        checked = kinds.index("rollback.step.checked")
        assert kinds.index("rollback.step.attempt") < checked < kinds.index("rollback.step.reversed")
    trail = [event.kind for event in events(rollback_id=rollback.pk)]
    assert trail.index("rollback.steps.queued") < trail.index("rollback.step.checked")


def test_a_batch_of_steps_checked_together_costs_one_append(cast, shop, worker, django_capture_on_commit_callbacks):
    targets = [chain(cast.shop, "refund.issue", prefix=f"batch-{n}")[0] for n in range(3)]
    rollback: Rollback = authorized(cast, django_capture_on_commit_callbacks, targets)
    worker()

    checked = events("rollback.step.checked", rollback_id=rollback.pk)
    assert sorted(event.action_id for event in checked) == sorted(action.pk for action in targets)
    # Appended together: consecutive in the chain, in the transaction that wrote the phase.
    assert [event.seq for event in checked] == list(range(checked[0].seq, checked[0].seq + 3))


def test_a_reversal_answered_ok_is_in_the_trail_before_the_step_ends(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "verify", WorkerKilled(), (200, {"status": "ok"}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    step = rollback.steps.get()

    with pytest.raises(WorkerKilled):
        worker()

    step.refresh_from_db()
    assert (step.outcome, step.phase) == ("pending", "reverse")
    [answered] = events("rollback.step.reverse_answered", rollback_id=rollback.pk)
    assert (answered.action_id, orjson.loads(answered.data)) == (refund.pk, {"step": step.pk, "phase": "reverse"})
    assert not events("rollback.step.reversed", rollback_id=rollback.pk)

    worker.sync.queue.clear()
    worker.sync.queue.append(("steps", [step.pk]))  # delivered again: resumes at verify, answers nothing again
    worker()
    kinds = [event.kind for event in events(rollback_id=rollback.pk, action_id=refund.pk)]
    assert kinds.count("rollback.step.reverse_answered") == 1
    assert kinds.index("rollback.step.checked") < kinds.index("rollback.step.reverse_answered")
    assert kinds.index("rollback.step.reverse_answered") < kinds.index("rollback.step.reversed")


def test_a_reversal_that_fails_leaves_no_reverse_answered_event(cast, shop, worker, django_capture_on_commit_callbacks):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "reverse", (200, {"status": "failed", "detail": "no"}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()

    assert rollback.steps.get().outcome == "failed"
    assert not events("rollback.step.reverse_answered", rollback_id=rollback.pk)
