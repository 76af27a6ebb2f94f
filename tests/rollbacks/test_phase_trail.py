"""Every durable fact about a step is in the trail when it becomes durable: the engine queueing a level
(`started_at`, what the worker guard admits a step by) and a step's checked prerequisites (`phase`), each in the
transaction that writes it and one audit append per level or batch, not per step."""

import orjson
import pytest

from rollbacks.models import Rollback, Step
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401
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
