"""The one place a rollback's state or a step's outcome changes.

Each move locks the row, checks the allowed-transition table beside the state choices, saves, and writes its
audit event, all in the caller's transaction. Services decide *when* to move; these functions make every move
the same way.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.services import EventSpec, record_event, record_events
from rollback_console.errors import Conflict
from rollbacks.dispatch import queue_announcing
from rollbacks.events import TOLD_STATES, open_integrator_events
from rollbacks.models import ROLLBACK_TRANSITIONS, STEP_TRANSITIONS, Rollback, RollbackState, Step


def lock_rollback(rollback_id: int) -> Rollback:
    """The rollback, locked until the end of the current transaction."""
    try:
        return Rollback.objects.select_for_update().get(pk=rollback_id)
    except Rollback.DoesNotExist:
        raise Conflict(f"Rollback {rollback_id} does not exist.") from None


def move_rollback(
    rollback: Rollback,
    to_state: str,
    *,
    actor: str,
    kind: str | None = None,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> Rollback:
    """Move a rollback the caller has locked (lock_rollback) to `to_state`, or raise Conflict."""
    from_state = rollback.state
    if to_state not in ROLLBACK_TRANSITIONS[from_state]:
        raise Conflict(f"A rollback that is {from_state} cannot become {to_state}.")
    rollback.state = to_state
    for name, value in fields.items():
        setattr(rollback, name, value)
    rollback.updated_at = timezone.now()
    rollback.save(update_fields=["state", "updated_at", *fields])
    record_event(
        kind or f"rollback.{to_state}",
        actor=actor,
        rollback_id=rollback.pk,
        data={"from": from_state, "to": to_state, **(data or {})},
    )
    if to_state in TOLD_STATES:
        open_integrator_events(rollback, f"rollback.{to_state}")
    if to_state == RollbackState.PAUSED:
        queue_announcing()  # whoever may confirm its cascade is told
    return rollback


def transition_rollback(rollback_id: int, to_state: str, *, actor: str, **kwargs: Any) -> Rollback:
    with transaction.atomic():
        return move_rollback(lock_rollback(rollback_id), to_state, actor=actor, **kwargs)


def lock_step(step_id: int, *, rollback_id: int | None = None) -> Step:
    steps = Step.objects.select_for_update()
    if rollback_id is not None:
        steps = steps.filter(rollback_id=rollback_id)
    try:
        return steps.get(pk=step_id)
    except Step.DoesNotExist:
        raise Conflict(f"Step {step_id} does not exist in this rollback.") from None


@dataclass
class StepMove:
    """Where one step (locked by the caller) goes."""

    step: Step
    outcome: str
    detail: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)  # more for the audit event


def move_steps(moves: Sequence[StepMove], *, actor: str, kind: str | None = None) -> None:
    """Move steps the caller has locked (lock_step, or select_for_update) or raise Conflict: a few queries
    whatever their number, so workers end a batch of steps while the audit chain's head is locked only briefly."""
    if not moves:
        return
    events = []
    changed = {"outcome"}
    for move in moves:
        step, from_outcome = move.step, move.step.outcome
        if move.outcome not in STEP_TRANSITIONS[from_outcome]:
            raise Conflict(f"A step that is {from_outcome} cannot become {move.outcome}.")
        step.outcome = move.outcome
        if move.detail is not None:
            step.detail = move.detail
            changed.add("detail")
        for name, value in move.fields.items():
            setattr(step, name, value)
        changed.update(move.fields)
        events.append(
            EventSpec(
                kind or f"rollback.step.{move.outcome}",
                actor=actor,
                action_id=step.action_id,
                rollback_id=step.rollback_id,
                data={"step": step.pk, "from": from_outcome, "to": move.outcome, "detail": step.detail, **move.data},
            )
        )
    # One UPDATE per distinct set of new values: a batch that ends alike (the usual case) is one statement.
    columns = sorted(changed)
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for move in moves:
        values = {name: getattr(move.step, name) for name in columns}
        groups.setdefault(repr(sorted(values.items())), (values, []))[1].append(move.step.pk)
    for values, pks in groups.values():
        Step.objects.filter(pk__in=pks).update(**values)
    record_events(events)


def move_step(
    step: Step,
    to_outcome: str,
    *,
    actor: str,
    kind: str | None = None,
    detail: str | None = None,
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> Step:
    """Move one step the caller has locked (lock_step) to `to_outcome`, or raise Conflict."""
    move_steps([StepMove(step, to_outcome, detail, fields, data or {})], actor=actor, kind=kind)
    return step
