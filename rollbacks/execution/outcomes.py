"""Moving steps: their outcomes, their actions' states and, where a person must act, remediation tasks, together
in the caller's transaction."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from actions.models import ACTION_TRANSITIONS, Action, ActionState, Reversibility
from actions.services import change_action_states
from audit.services import EventSpec, record_events
from rollbacks.dispatch import queue_announcing
from rollbacks.models import NEEDS_PERSON_OUTCOMES, RemediationTask, Step, StepOutcome
from rollbacks.transitions import StepMove, move_steps

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
class StepEnding(StepMove):
    """A step's move that may hand a person a remediation task."""

    remediation: tuple[str, str] | None = None  # (reason, instructions)


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


def end_steps(endings: Sequence[StepEnding], *, actor: str, kind: str | None = None) -> None:
    """Move steps the caller has locked (rollbacks.transitions.move_steps), open the remediation tasks they hand
    to people, and move their actions to the states their outcomes imply, in a few queries whatever their number."""
    if not endings:
        return
    move_steps(endings, actor=actor, kind=kind)
    opening = [(ending, ending.remediation) for ending in endings if ending.remediation is not None]
    tasks = RemediationTask.objects.bulk_create(
        [RemediationTask(step=ending.step, reason=reason, instructions=text) for ending, (reason, text) in opening]
    )
    follow_actions(endings, actor=actor)
    if opening or any(ending.outcome in NEEDS_PERSON_OUTCOMES for ending in endings):
        queue_announcing()  # whoever may retry, resolve or close them is told
    record_events(
        [
            EventSpec(
                "remediation.opened",
                actor=actor,
                action_id=ending.step.action_id,
                rollback_id=ending.step.rollback_id,
                data={
                    "task": task.pk,
                    "step": ending.step.pk,
                    "reason": task.reason,
                    "instructions": task.instructions,
                },
            )
            for (ending, _), task in zip(opening, tasks, strict=True)
        ]
    )


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
    end_steps(
        [StepEnding(step, outcome, detail, {"finished_at": timezone.now(), **fields}, remediation=remediation)],
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
