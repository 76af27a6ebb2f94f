"""Running a rollback: down the cascade level by level, pausing at the confirmed depth, then communications.

A level's steps all finish (reverse and verify) before the next level starts, because a downstream action's
reversal assumes its cause is already undone. Every decision is taken under the rollback's row lock, so the
workers finishing the last steps of a level at the same moment queue the next level once: a step is marked as
queued (`started_at`) in the same transaction that queues it.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Min
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import SYSTEM, actor_name, record_event
from policies.selectors import policy_of
from rollback_console.errors import Invalid
from rollbacks.communications import open_trigger_communications
from rollbacks.dispatch import queue_communications, queue_rollback, queue_steps
from rollbacks.execution.outcomes import finish_step, loop_detail
from rollbacks.execution.steps import StepRun, execute_steps
from rollbacks.guard import refuse_run, refuse_unknown, whole_id
from rollbacks.models import (
    FINISHED_OUTCOMES,
    Communication,
    CommunicationStatus,
    Rollback,
    RollbackState,
    Step,
    StepOutcome,
)
from rollbacks.rules import NEVER_AUTHORIZED, RUNNING_STATES, authorize_carry_on, confirm_refusal
from rollbacks.transitions import StepMove, lock_rollback, move_rollback, move_steps

_S = RollbackState
_O = StepOutcome
# A rollback with no audited event for this long while it should be moving is queued again by the sweeper. Longer
# than the longest retry backoff, so a rollback merely waiting on a retry is never taken for stalled.
STALLED_AFTER = timedelta(minutes=5)
# Step outcomes that count as progress when deciding between `partially_completed` and `failed`.
# A level's queued event names at most this many step ids (and how many there were).
_IDS_KEPT = 100
_PROGRESS = frozenset({_O.REVERSED, _O.ALREADY_REVERSED, _O.COMPENSATION_FAILED, _O.MANUAL_DONE})


@dataclass
class BatchRun:
    runs: list[StepRun] = field(default_factory=list)

    @property
    def retries(self) -> dict[float, list[int]]:
        """Steps to run again, grouped by how many seconds to wait."""
        grouped: dict[float, list[int]] = {}
        for run in self.runs:
            if run.retry_in is not None:
                grouped.setdefault(run.retry_in, []).append(run.step_id)
        return grouped


def run_rollback(rollback_id: Any, *, message: dict[str, Any] | None = None) -> None:
    """Start an authorized rollback or carry one on: queue the next level, pause at the confirmed depth, or go on
    to communications and the end. Safe to call any number of times.

    A rollback nobody authorized is left as it is and the attempt audited. So is a paused one when a task asks
    (`message`): the engine queues no run of a paused rollback, it waits for a person. The engine's own calls
    (no `message`) reach paused and ended rollbacks in ordinary races, such as two batches ending a level at
    once, and change nothing there."""
    asked = message or {"task": "run_rollback"}
    with transaction.atomic():
        rollback = Rollback.objects.select_for_update().filter(pk=whole_id(rollback_id) or 0).first()
        if rollback is None:
            refuse_unknown("rollback.run_refused", rollback_id, message=asked)
            return
        if rollback.state in NEVER_AUTHORIZED or (message is not None and rollback.state == _S.PAUSED):
            refuse_run(rollback, message=asked)
            return
        _advance(rollback)


def run_steps(step_ids: list[int], *, message: dict[str, Any] | None = None) -> BatchRun:
    """Execute queued steps, then let each rollback they belong to move on."""
    batch = BatchRun(execute_steps(step_ids, message=message))
    for rollback_id in sorted({run.rollback_id for run in batch.runs if run.retry_in is None}):
        run_rollback(rollback_id)
    return batch


def _advance(rollback: Rollback) -> None:
    if rollback.state == _S.AUTHORIZED:
        move_rollback(rollback, _S.EXECUTING, actor=SYSTEM, started_at=timezone.now())
    if rollback.state == _S.EXECUTING:
        _advance_levels(rollback)
    elif rollback.state == _S.COMMUNICATING:
        settle_rollback(rollback)


def _advance_levels(rollback: Rollback) -> None:
    steps = Step.objects.filter(rollback=rollback, outcome=_O.PENDING)
    while True:
        level = steps.aggregate(level=Min("depth"))["level"]
        if level is None:
            settle_rollback(rollback)
            return
        if level > rollback.confirmed_depth:
            _pause(rollback)
            return
        loops = steps.filter(depth=level, is_loop=True).select_for_update(of=("self",)).select_related("action")
        for loop in loops:
            finish_step(loop, _O.LOOP_STOPPED, actor=SYSTEM, detail=loop_detail(loop))
        unqueued = steps.filter(depth=level, is_loop=False, started_at__isnull=True)
        queued = list(unqueued.order_by("pk").values_list("pk", flat=True))
        if queued:
            # By the same filter, not by the list of ids (a level of an incident holds 50,000 steps): under the
            # rollback's lock nothing else queues this rollback's steps.
            unqueued.update(started_at=timezone.now())
            # `started_at` is what the worker guard admits a step by, so the trail says when the engine set it.
            record_event(
                "rollback.steps.queued",
                actor=SYSTEM,
                rollback_id=rollback.pk,
                data={"depth": level, "steps": queued[:_IDS_KEPT], "count": len(queued)},
            )
            queue_steps(queued)
            return
        if steps.filter(depth=level).exists():
            return  # the level's steps are running; the last one to finish moves the rollback on


def _pause(rollback: Rollback) -> None:
    beyond = Step.objects.select_for_update().filter(
        rollback=rollback, outcome=_O.PENDING, depth__gt=rollback.confirmed_depth
    )
    detail = f"beyond the confirmed depth {rollback.confirmed_depth}"
    move_steps([StepMove(step, _O.AWAITING_CONFIRMATION, detail) for step in beyond], actor=SYSTEM)
    move_rollback(rollback, _S.PAUSED, actor=SYSTEM, data={"confirmed_depth": rollback.confirmed_depth})


def settle_rollback(rollback: Rollback) -> None:
    """No step can move: open the trigger's communications and wait for them, or end the rollback."""
    outcomes = Counter(
        dict(Step.objects.filter(rollback=rollback).values_list("outcome").annotate(n=Count("pk")).order_by())
    )
    if outcomes[_O.PENDING]:
        return
    if outcomes[_O.AWAITING_CONFIRMATION] and rollback.state == _S.EXECUTING:
        move_rollback(rollback, _S.PAUSED, actor=SYSTEM, data={"confirmed_depth": rollback.confirmed_depth})
        return
    created = open_trigger_communications(rollback, policy_of(rollback.policy_version_id))
    unsent = list(
        Communication.objects.filter(rollback=rollback, status=CommunicationStatus.PENDING).values_list("pk", flat=True)
    )
    if unsent:
        if rollback.state != _S.COMMUNICATING:
            move_rollback(rollback, _S.COMMUNICATING, actor=SYSTEM, data={"communications": len(unsent)})
            queue_communications(unsent)
        elif created:
            queue_communications([communication.pk for communication in created])
        return
    unfinished = any(outcome not in FINISHED_OUTCOMES for outcome in outcomes)
    not_sent = (
        Communication.objects.filter(rollback=rollback)
        .exclude(status=CommunicationStatus.SENT)
        .exclude(step__outcome=_O.MANUAL_DONE)  # a person handled that step, its message included
        .exists()
    )
    if not unfinished and not not_sent:
        final = _S.COMPLETED
    elif any(outcomes[outcome] for outcome in _PROGRESS):
        final = _S.PARTIALLY_COMPLETED
    else:
        final = _S.FAILED
    if final != rollback.state:
        move_rollback(
            rollback,
            final,
            actor=SYSTEM,
            data={"outcomes": dict(sorted(outcomes.items()))},
            finished_at=timezone.now(),
        )


def confirm_cascade(rollback_id: int, *, actor: Any, depth: int | None = None) -> Rollback:
    """Let a paused rollback go one level deeper than it may now (or to `depth`)."""
    authorize_carry_on(actor, rollback_id, "confirm_cascade")
    name = actor_name(actor)
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        refusal = confirm_refusal(rollback)
        if refusal is not None:
            raise refusal.error()
        previous = rollback.confirmed_depth
        new_depth = previous + 1 if depth is None else depth
        if new_depth <= previous:
            raise Invalid({"depth": [f"Must be deeper than the depth already confirmed ({previous})."]})
        confirmed = Step.objects.select_for_update().filter(
            rollback=rollback, outcome=_O.AWAITING_CONFIRMATION, depth__lte=new_depth
        )
        moves = [
            StepMove(step, _O.PENDING, f"confirmed to depth {new_depth}", fields={"started_at": None})
            for step in confirmed
        ]
        move_steps(moves, actor=name, kind="rollback.step.confirmed")
        move_rollback(
            rollback,
            _S.EXECUTING,
            actor=name,
            kind="rollback.cascade_confirmed",
            data={"from_depth": previous, "depth": new_depth},
            confirmed_depth=new_depth,
        )
        queue_rollback(rollback.pk)
    return rollback


def resume_stalled_rollbacks(*, stalled_after: timedelta = STALLED_AFTER) -> list[int]:
    """Queue again every rollback that should be moving but has recorded nothing for `stalled_after` (its task
    was lost, say). Running it beside live workers is safe: steps and messages are idempotent and claimed."""
    cutoff = timezone.now() - stalled_after
    candidates = Rollback.objects.filter(state__in=RUNNING_STATES, updated_at__lt=cutoff).values_list("pk", flat=True)
    resumed = []
    for rollback_id in candidates:
        last = AuditEvent.objects.filter(rollback_id=rollback_id).order_by("-seq").values_list("at", flat=True).first()
        if last is not None and last >= cutoff:
            continue
        if resume_rollback(rollback_id):
            resumed.append(rollback_id)
    return resumed


def resume_rollback(rollback_id: int) -> bool:
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        if rollback.state not in RUNNING_STATES:
            return False
        requeued = Step.objects.filter(rollback=rollback, outcome=_O.PENDING).update(started_at=None)
        unsent = list(
            Communication.objects.filter(rollback=rollback, status=CommunicationStatus.PENDING).values_list(
                "pk", flat=True
            )
        )
        record_event(
            "rollback.resumed",
            actor=SYSTEM,
            rollback_id=rollback.pk,
            data={"state": rollback.state, "steps": requeued, "communications": len(unsent)},
        )
        if rollback.state == _S.COMMUNICATING:
            queue_communications(unsent)
        _advance(rollback)
    return True
