"""What a worker may do now, whatever message reached it (contract: "Authorization holds below the API").

The broker is not a place of trust: a task scheduled in the admin, sent by hand to the broker or replayed long
after its rollback ended arrives looking like the engine's own. So the engine is the only source of work: a step
runs only while its rollback is `executing`, within the confirmed depth, and after the engine queued it
(`started_at`, set under the rollback's lock in the transaction that queues it); a message goes out only while
its rollback is `communicating` or later, or, as a compensation, while its step may run. Anything else is
refused: nothing is called, no state moves, the refusal is audited and the task ends without a retry.
"""

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from audit.services import SYSTEM, EventSpec, record_event, record_events
from rollbacks.models import Communication, Rollback, RollbackState, Step, StepOutcome
from rollbacks.rules import MAY_RUN_OUTCOMES, MESSAGE_STATES, NEVER_AUTHORIZED

logger = logging.getLogger(__name__)

_S = RollbackState
# A refusal names at most this many step ids (and how many there were): a flood must not grow the trail.
_IDS_KEPT = 100
_BIGINT = 2**63  # beyond it PostgreSQL refuses the id outright


def step_refusal(rollback: Rollback, step: Step) -> str | None:
    """Why a worker may not run this pending step now, or None when it may."""
    if rollback.state != _S.EXECUTING:
        return f"the rollback is {rollback.state}, not executing"
    if step.depth > rollback.confirmed_depth:
        return f"depth {step.depth} is beyond the confirmed depth {rollback.confirmed_depth}"
    if step.started_at is None:
        return "the engine has not queued this step"
    return None


def communication_refusal(communication: Communication) -> str | None:
    """Why a worker may not send this message now, or None when it may. The caller locked its rollback."""
    rollback = communication.rollback
    if rollback.state in MESSAGE_STATES:
        return None
    step = communication.step
    if rollback.state == _S.EXECUTING and step is not None and step.outcome == StepOutcome.PENDING:
        return step_refusal(rollback, step)  # a compensation owed by a step that is running
    return f"the rollback is {rollback.state}; its messages go out only once it is communicating"


def admit_steps(step_ids: Any, *, message: dict[str, Any]) -> list[Step]:
    """The steps named by a message that a worker may run now, and the audited refusal of the others.

    The rollbacks are locked while they are read, so a step is judged against a state nobody is changing. The
    engine queues one rollback's steps per message, so a message naming steps of several rollbacks was not made
    by it: every step in it is refused. A finished step of an authorized rollback is a redelivery, admitted: the
    batch calls nothing for it and moves the rollback on, in case the worker that ended it died before that
    (and a replay long after the rollback ended changes nothing, not even the trail)."""
    wanted, malformed = _step_ids(step_ids)
    with transaction.atomic():
        rollbacks = {
            rollback.pk: rollback
            for rollback in Rollback.objects.select_for_update()
            .filter(pk__in=Step.objects.filter(pk__in=wanted).values("rollback_id"))
            .order_by("pk")
        }
        steps = list(
            Step.objects.filter(pk__in=wanted)
            .only("pk", "rollback_id", "action_id", "depth", "outcome", "started_at")
            .order_by("pk")
        )
        refused: dict[int, tuple[str, list[int]]] = {}
        admitted = []
        for step in steps:
            rollback = rollbacks[step.rollback_id]
            reason: str | None
            if len(rollbacks) > 1:
                reason = "the message names steps of more than one rollback"
            elif rollback.state not in NEVER_AUTHORIZED and step.outcome not in MAY_RUN_OUTCOMES:
                reason = None  # finished: the batch leaves it alone and lets the rollback move on
            else:
                reason = step_refusal(rollback, step)
            if reason is None:
                admitted.append(step)
            else:
                refused.setdefault(rollback.pk, (reason, []))[1].append(step.pk)
        specs = [
            EventSpec(
                "rollback.step.refused",
                actor=SYSTEM,
                rollback_id=rollback_id,
                data={"reason": reason, **_ids(pks), **message},
            )
            for rollback_id, (reason, pks) in sorted(refused.items())
        ]
        unknown = sorted(set(wanted) - {step.pk for step in steps})
        if unknown or malformed:
            reason = "the message names steps that do not exist" if unknown else "the message is not a list of ids"
            data = {"reason": reason, **_ids(unknown), **message}
            specs.append(EventSpec("rollback.step.refused", actor=SYSTEM, data=data))
        if specs:
            record_events(specs)
            for spec in specs:
                _warn(spec.data)
    return admitted


def refuse_communication(communication: Communication, reason: str, *, message: dict[str, Any]) -> None:
    """Audit a message a worker would not send (inside the transaction that locked it)."""
    record_event(
        "rollback.communication.refused",
        actor=SYSTEM,
        action_id=communication.step.action_id if communication.step else None,
        rollback_id=communication.rollback_id,
        data={"reason": reason, "communication": communication.pk, **message},
    )
    _warn({"reason": reason, **message})


def refuse_run(rollback: Rollback, *, message: dict[str, Any]) -> None:
    """Audit a run of a rollback nobody authorized (inside the transaction that locked it)."""
    record_event(
        "rollback.run_refused",
        actor=SYSTEM,
        rollback_id=rollback.pk,
        data={"reason": f"the rollback is {rollback.state}", **message},
    )
    _warn({"reason": f"the rollback is {rollback.state}", **message})


def refuse_unknown(kind: str, value: Any, *, message: dict[str, Any]) -> None:
    """Audit a message that names no rollback or communication of ours (a malformed or made-up id)."""
    data = {"reason": "the message names nothing that exists", "id": repr(value)[:100], **message}
    record_event(kind, actor=SYSTEM, data=data)
    _warn(data)


def whole_id(value: Any) -> int | None:
    """The id a message carries, or None when it is not one the database could hold."""
    return value if type(value) is int and 0 < value < _BIGINT else None


def _step_ids(value: Any) -> tuple[list[int], bool]:
    """The whole-number ids in a message's argument, and whether anything else was in it."""
    items = value if isinstance(value, list | tuple) else [value]
    ids = sorted({item for item in items if whole_id(item) is not None})
    return ids, len(ids) != len(set(map(repr, items)))


def _warn(data: Mapping[str, Any]) -> None:
    """A refusal is worth an operator's look: something other than the engine is sending work."""
    logger.warning("Refused %s: %s", data.get("task"), data.get("reason"))


def _ids(pks: list[int]) -> dict[str, Any]:
    return {"steps": pks[:_IDS_KEPT], "count": len(pks)}
