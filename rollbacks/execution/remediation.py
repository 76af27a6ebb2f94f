"""What people do once the workers could not finish a step: run it again, or record that they handled it."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from actions.models import ActionState
from actions.services import change_action_states
from audit.services import actor_name, record_event
from rollback_console.errors import Conflict, Invalid
from rollbacks.dispatch import queue_rollback
from rollbacks.execution.cascade import settle_rollback
from rollbacks.execution.outcomes import finish_step
from rollbacks.models import RemediationTask, Rollback, RollbackState, Step, StepOutcome
from rollbacks.rules import authorize_carry_on, may_resolve, resolve_refusal, retry_refusal
from rollbacks.transitions import lock_rollback, lock_step, move_rollback, move_step

_S = RollbackState
_O = StepOutcome
_ENDED = frozenset({_S.PARTIALLY_COMPLETED, _S.FAILED})


def retry_step(rollback_id: int, step_id: int, *, actor: Any) -> Rollback:
    """Run a `failed` or `prerequisites_unmet` step again, from the last phase that answered ok."""
    authorize_carry_on(actor, rollback_id, "retry_step")
    name = actor_name(actor)
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        step = lock_step(step_id, rollback_id=rollback_id)
        refusal = retry_refusal(rollback, step)
        if refusal is not None:
            raise refusal.error()
        move_step(
            step,
            _O.PENDING,
            actor=name,
            kind="rollback.step.retried",
            data={"attempts_before": step.attempts},
            attempts=0,  # a fresh budget of tries; the trail keeps every earlier attempt
            unmet=[],
            started_at=None,
            finished_at=None,
        )
        if not step.is_loop:
            change_action_states({step.action_id: ActionState.ROLLBACK_PENDING}, actor=name, rollback_id=rollback.pk)
        if rollback.state in (*_ENDED, _S.COMMUNICATING):
            move_rollback(rollback, _S.EXECUTING, actor=name, data={"retried_step": step.pk})
        if rollback.state == _S.EXECUTING:
            queue_rollback(rollback.pk)  # a paused rollback runs the step once its cascade is confirmed
    return rollback


def resolve_step(rollback_id: int, step_id: int, *, actor: Any, note: str) -> Rollback:
    """Record that a person handled a step the workers could not finish (`manual_done`)."""
    note = _clean_note(note)
    authorize_carry_on(actor, rollback_id, "resolve_step")
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        step = lock_step(step_id, rollback_id=rollback_id)
        refusal = resolve_refusal(rollback, step)
        if refusal is not None:
            raise refusal.error()
        _resolve(rollback, step, actor=actor, note=note)
    return rollback


def complete_remediation(task_id: int, *, actor: Any, note: str) -> RemediationTask:
    """Close a remediation task; its step, if still waiting for a person, is resolved with it."""
    note = _clean_note(note)
    found = RemediationTask.objects.filter(pk=task_id).values_list("step__rollback_id", "step_id").first()
    if found is None:
        raise Conflict(f"Remediation task {task_id} does not exist.")
    rollback_id, step_id = found
    authorize_carry_on(actor, rollback_id, "complete_remediation")
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        step = lock_step(step_id)
        task = RemediationTask.objects.select_for_update().get(pk=task_id)
        if task.done_at is not None:
            raise Conflict(f"Remediation task {task_id} was completed already.")
        if may_resolve(rollback, step):
            _resolve(rollback, step, actor=actor, note=note)
        else:
            _close_task(task, step, actor=actor, note=note)
        task.refresh_from_db()
    return task


def _clean_note(note: Any) -> str:
    if not isinstance(note, str) or not note.strip():
        raise Invalid({"note": ["Say what was done by hand."]})
    return note.strip()


def _resolve(rollback: Rollback, step: Step, *, actor: Any, note: str) -> None:
    name = actor_name(actor)
    finish_step(step, _O.MANUAL_DONE, actor=name, detail=f"resolved by {name}: {note}", kind="rollback.step.resolved")
    for task in RemediationTask.objects.select_for_update().filter(step=step, done_at__isnull=True):
        _close_task(task, step, actor=actor, note=note)
    if rollback.state in _ENDED:
        settle_rollback(rollback)  # resolving what was left may complete it


def _close_task(task: RemediationTask, step: Step, *, actor: Any, note: str) -> None:
    task.done_by = actor
    task.done_at = timezone.now()
    task.note = note
    task.save(update_fields=["done_by", "done_at", "note"])
    record_event(
        "remediation.done",
        actor=actor_name(actor),
        action_id=step.action_id,
        rollback_id=step.rollback_id,
        data={"task": task.pk, "step": step.pk, "reason": task.reason, "note": note},
    )
