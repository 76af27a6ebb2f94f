"""Moving steps: their outcomes, their actions' states and, where a person must act, remediation tasks, together
in the caller's transaction."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from actions.models import ACTION_TRANSITIONS, Action, ActionState, Reversibility
from actions.services import change_action_states
from audit.services import EventSpec, record_events
from rollback_console.errors import Conflict
from rollbacks.models import STEP_TRANSITIONS, RemediationTask, Step, StepOutcome

logger = logging.getLogger(__name__)

_O = StepOutcome
_REVERSED_OUTCOMES = frozenset({_O.REVERSED, _O.ALREADY_REVERSED, _O.COMPENSATION_FAILED})
_ACTION_STATE_AFTER: dict[str, str] = {
    _O.FAILED: ActionState.REVERSAL_FAILED,
    _O.PREREQUISITES_UNMET: ActionState.REVERSAL_FAILED,
    _O.NOT_REVERSIBLE: ActionState.MANUAL_REMEDIATION,
    _O.MANUAL_DONE: ActionState.MANUALLY_RESOLVED,
}


@dataclass
class StepMove:
    """Where one step (locked by the caller) goes."""

    step: Step
    outcome: str
    detail: str | None = None
    remediation: tuple[str, str] | None = None  # (reason, instructions) of the task a person gets
    fields: Mapping[str, Any] = field(default_factory=dict)


def action_state_after(outcome: str, *, state: str, reversibility: str) -> str | None:
    """The state the contract gives an action whose step ends `outcome`, or None to leave it as it is."""
    if outcome in _REVERSED_OUTCOMES:
        if outcome == _O.ALREADY_REVERSED and state in (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED):
            return None
        return ActionState.PARTIALLY_REVERSED if reversibility == Reversibility.PARTIAL else ActionState.REVERSED
    return _ACTION_STATE_AFTER.get(outcome)


def follow_actions(endings: Sequence[StepMove], *, actor: str) -> None:
    """Move the steps' actions to the states their outcomes imply, one call per rollback. A loop arrival leaves
    its action alone: the action's own step, nearer the target, already decided it."""
    endings = [ending for ending in endings if not ending.step.is_loop]
    facts = {
        pk: (state, reversibility)
        for pk, state, reversibility in Action.objects.filter(
            pk__in=[ending.step.action_id for ending in endings]
        ).values_list("pk", "state", "reversibility")
    }
    changes: dict[int, dict[int, str]] = {}
    for ending in endings:
        state, reversibility = facts[ending.step.action_id]
        to_state = action_state_after(ending.outcome, state=state, reversibility=reversibility)
        if to_state is None or to_state == state:
            continue
        if to_state not in ACTION_TRANSITIONS.get(state, frozenset()):
            # Another rollback moved it meanwhile (say, reversed it for good); its state is the truer one.
            step = ending.step
            logger.warning("Action %s stays %s: step %s ended %s", step.action_id, state, step.pk, ending.outcome)
            continue
        changes.setdefault(ending.step.rollback_id, {})[ending.step.action_id] = to_state
    for rollback_id, moves in changes.items():
        change_action_states(moves, actor=actor, rollback_id=rollback_id)


def move_steps(moves: Sequence[StepMove], *, actor: str, kind: str | None = None) -> None:
    """Move many steps the caller has locked, as rollbacks.transitions.move_step moves one (the same table, the
    same events), in a few queries whatever their number: one update for the steps, one insert for their tasks,
    their actions' states, then every audit event at once, so the audit chain's head stays locked only briefly
    while the workers end a batch."""
    if not moves:
        return
    events: list[EventSpec] = []
    changed = {"outcome"}
    for move in moves:
        step = move.step
        from_outcome = step.outcome
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
                data={"step": step.pk, "from": from_outcome, "to": move.outcome, "detail": step.detail},
            )
        )
    _save_moved(moves, sorted(changed))
    opening = [(move, move.remediation) for move in moves if move.remediation is not None]
    tasks = RemediationTask.objects.bulk_create(
        [RemediationTask(step=move.step, reason=reason, instructions=text) for move, (reason, text) in opening]
    )
    for (move, _), task in zip(opening, tasks, strict=True):
        events.append(
            EventSpec(
                "remediation.opened",
                actor=actor,
                action_id=move.step.action_id,
                rollback_id=move.step.rollback_id,
                data={"task": task.pk, "step": move.step.pk, "reason": task.reason, "instructions": task.instructions},
            )
        )
    follow_actions(moves, actor=actor)
    record_events(events)


def _save_moved(moves: Sequence[StepMove], fields: list[str]) -> None:
    """One UPDATE per distinct set of new values: a batch that ends alike (the usual case) is one statement."""
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for move in moves:
        values = {name: getattr(move.step, name) for name in fields}
        key = repr(sorted(values.items()))
        groups.setdefault(key, (values, []))[1].append(move.step.pk)
    for values, pks in groups.values():
        Step.objects.filter(pk__in=pks).update(**values)


def finish_step(
    step: Step,
    outcome: str,
    *,
    actor: str,
    detail: str,
    remediation: tuple[str, str] | None = None,
    kind: str | None = None,
    **fields: Any,
) -> Step:
    """End one step the caller has locked."""
    move_steps(
        [StepMove(step, outcome, detail, remediation, {"finished_at": timezone.now(), **fields})],
        actor=actor,
        kind=kind,
    )
    return step


def loop_detail(step: Step) -> str:
    """Names the path by which the cascade came back to an action already on it: target first. The request
    usually froze it into the step's detail already."""
    if step.detail:
        return step.detail
    names = [step.action.external_id]
    via = step.via
    while via is not None:
        names.append(via.action.external_id)
        via = via.via
    return "loop: " + " -> ".join(reversed(names))
