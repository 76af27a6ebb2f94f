"""Ending a step: its outcome, its action's state and, where a person must act, a remediation task, together."""

import logging
from typing import Any

from django.utils import timezone

from actions.models import ACTION_TRANSITIONS, Action, ActionState, Reversibility
from actions.services import change_action_states
from audit.services import record_event
from rollbacks.models import RemediationTask, Step, StepOutcome
from rollbacks.transitions import move_step

logger = logging.getLogger(__name__)

_O = StepOutcome
_REVERSED_OUTCOMES = frozenset({_O.REVERSED, _O.ALREADY_REVERSED, _O.COMPENSATION_FAILED})
_ACTION_STATE_AFTER: dict[str, str] = {
    _O.FAILED: ActionState.REVERSAL_FAILED,
    _O.PREREQUISITES_UNMET: ActionState.REVERSAL_FAILED,
    _O.NOT_REVERSIBLE: ActionState.MANUAL_REMEDIATION,
    _O.MANUAL_DONE: ActionState.MANUALLY_RESOLVED,
}


def action_state_after(outcome: str, *, state: str, reversibility: str) -> str | None:
    """The state the contract gives an action whose step ends `outcome`, or None to leave it as it is."""
    if outcome in _REVERSED_OUTCOMES:
        if outcome == _O.ALREADY_REVERSED and state in (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED):
            return None
        return ActionState.PARTIALLY_REVERSED if reversibility == Reversibility.PARTIAL else ActionState.REVERSED
    return _ACTION_STATE_AFTER.get(outcome)


def follow_action(step: Step, outcome: str, *, actor: str) -> None:
    """Move the step's action to the state its outcome implies. A loop arrival leaves it alone: the action's own
    step (nearer the target) already decided it."""
    if step.is_loop:
        return
    state, reversibility = Action.objects.values_list("state", "reversibility").get(pk=step.action_id)
    to_state = action_state_after(outcome, state=state, reversibility=reversibility)
    if to_state is None or to_state == state:
        return
    if to_state not in ACTION_TRANSITIONS.get(state, frozenset()):
        # Another rollback moved it meanwhile (say, reversed it for good); its state is the truer one.
        logger.warning("Action %s stays %s: step %s ended %s", step.action_id, state, step.pk, outcome)
        return
    change_action_states({step.action_id: to_state}, actor=actor, rollback_id=step.rollback_id)


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


def open_remediation(step: Step, reason: str, instructions: str, *, actor: str) -> RemediationTask:
    task = RemediationTask.objects.create(step=step, reason=reason, instructions=instructions)
    record_event(
        "remediation.opened",
        actor=actor,
        action_id=step.action_id,
        rollback_id=step.rollback_id,
        data={"task": task.pk, "step": step.pk, "reason": reason, "instructions": instructions},
    )
    return task


def finish_step(
    step: Step,
    outcome: str,
    *,
    actor: str,
    detail: str,
    remediation: tuple[str, str] | None = None,
    **fields: Any,
) -> Step:
    """End a step the caller has locked: outcome (audited by move_step), action state, remediation task."""
    move_step(step, outcome, actor=actor, detail=detail, finished_at=timezone.now(), **fields)
    follow_action(step, outcome, actor=actor)
    if remediation is not None:
        open_remediation(step, *remediation, actor=actor)
    return step
