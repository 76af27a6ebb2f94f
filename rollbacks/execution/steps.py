"""Reversing one step: check, reverse, compensations, verify, each phase made durable as it answers ok.

`step.phase` names the last phase that answered ok, so a task delivered again after its worker died resumes
where it stopped and never calls `reverse` twice for one step (the integrator's idempotency key would make a
repeat harmless anyway). Nothing here runs two phases of one action at once: see claims.claim_action.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from actions.models import ActionState, Reversibility
from audit.services import SYSTEM, record_event
from policies.manifest import ActionTypePolicy
from policies.methods import METHODS
from policies.methods.base import Phase, PhaseResult, ReversalCall
from policies.selectors import policy_of
from rollbacks.backoff import retry_delay
from rollbacks.communications import open_compensations, send_communication
from rollbacks.execution.claims import claim_action
from rollbacks.execution.outcomes import finish_step, loop_detail
from rollbacks.models import (
    Communication,
    CommunicationStatus,
    RemediationReason,
    Step,
    StepOutcome,
)
from rollbacks.transitions import lock_step

logger = logging.getLogger(__name__)

_O = StepOutcome
# Steps of other rollbacks that mean the action was reversed already: finished ones, and one whose `reverse`
# answered ok but which has not finished yet.
_REVERSED_ELSEWHERE = Q(outcome__in=[_O.REVERSED, _O.ALREADY_REVERSED, _O.COMPENSATION_FAILED, _O.MANUAL_DONE]) | Q(
    outcome=_O.PENDING, phase="reverse"
)
# Another worker holds the action (a duplicate delivery, or another rollback's step on it): look again shortly.
CLAIM_RETRY_SECONDS = 1.0


@dataclass(frozen=True)
class StepRun:
    step_id: int
    rollback_id: int
    outcome: str
    retry_in: float | None = None  # a transient failure: run the step again after this many seconds


def execute_step(step_id: int) -> StepRun | None:
    """Take a pending step as far as it goes now. Safe to call again at any time: a finished step is left alone.
    None when there is no such step (a task outlived its data)."""
    found = Step.objects.filter(pk=step_id).values_list("action_id", "rollback_id").first()
    if found is None:
        return None
    action_id, rollback_id = found
    with claim_action(action_id) as held:
        if not held:
            return StepRun(step_id, rollback_id, _O.PENDING, retry_in=CLAIM_RETRY_SECONDS)
        return _StepExecution(step_id).run()


class _StepExecution:
    def __init__(self, step_id: int) -> None:
        self.step = Step.objects.select_related("action", "action__integrator", "rollback").get(pk=step_id)
        self.counted = False  # whether this try was counted as an attempt yet

    def done(self) -> StepRun:
        return StepRun(self.step.pk, self.step.rollback_id, self.step.outcome)

    def run(self) -> StepRun:
        step, action = self.step, self.step.action
        if step.outcome != _O.PENDING:
            return self.done()
        if step.is_loop:
            return self.finish(_O.LOOP_STOPPED, loop_detail(step))
        if not step.phase and self.reversed_elsewhere():
            return self.finish(_O.ALREADY_REVERSED, "the action was already reversed; nothing was called")
        manifest = policy_of(step.rollback.policy_version_id)
        policy = manifest.action_type(action.action_type)
        if policy is None:
            return self.finish(_O.FAILED, f"the rollback's policy has no action type {action.action_type!r}")
        if action.reversibility == Reversibility.IRREVERSIBLE or policy.method is None:
            instructions = str(policy.reversal.get("instructions", "")) or "; ".join(policy.side_effects)
            return self.finish(
                _O.NOT_REVERSIBLE,
                "irreversible: routed to manual remediation",
                remediation=(RemediationReason.NOT_REVERSIBLE, instructions),
            )
        if policy.method == "manual":
            instructions = str(policy.reversal.get("instructions", "Reverse by hand."))
            return self.finish(
                _O.NOT_REVERSIBLE,
                "the reversal method is manual: routed to manual remediation",
                remediation=(RemediationReason.MANUAL_METHOD, instructions),
            )
        return self.run_phases(policy, manifest.integrators.get(str(policy.reversal.get("integrator", ""))))

    def reversed_elsewhere(self) -> bool:
        step = self.step
        if step.action.state in (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED):
            return True
        return (
            Step.objects.filter(action_id=step.action_id)
            .exclude(rollback_id=step.rollback_id)
            .filter(_REVERSED_ELSEWHERE)
            .exists()
        )

    def run_phases(self, policy: ActionTypePolicy, integrator: Mapping[str, Any] | None) -> StepRun:
        step = self.step
        if not step.phase:
            result = self.call("check", policy, integrator)
            if result.status == "unmet":
                names = list(result.unmet) or list(policy.prerequisites)
                return self.finish(_O.PREREQUISITES_UNMET, f"prerequisites unmet: {', '.join(names)}", unmet=names)
            if result.status != "ok":
                return self.failure("check", result)
            self.record_phase("check")
        if step.phase == "check":
            result = self.call("reverse", policy, integrator)
            if result.status != "ok":
                return self.failure("reverse", result)
            self.record_phase("reverse", policy)
        # The reversal stands from here on: what is left is telling people, then confirming it took.
        compensations = list(Communication.objects.filter(step=step).order_by("pk"))
        for communication in compensations:
            if communication.status == CommunicationStatus.PENDING:
                delivery = send_communication(communication.pk)
                if delivery is None:
                    continue
                if delivery.retry_in is not None:
                    return StepRun(step.pk, step.rollback_id, _O.PENDING, retry_in=delivery.retry_in)
                communication.status = delivery.status
        result = self.call("verify", policy, integrator)
        if result.status != "ok":
            return self.failure("verify", result)
        unsent = [c for c in compensations if c.status != CommunicationStatus.SENT]
        if unsent:
            templates = ", ".join(f"{c.audience} {c.template}" for c in unsent)
            return self.finish(
                _O.COMPENSATION_FAILED,
                f"reversed and verified, but not sent: {templates}",
                remediation=(RemediationReason.COMPENSATION_FAILED, f"Tell them by hand: {templates}."),
                phase="verify",
            )
        return self.finish(_O.REVERSED, "reversed and verified", phase="verify")

    def call(self, phase: Phase, policy: ActionTypePolicy, integrator: Mapping[str, Any] | None) -> PhaseResult:
        step, action = self.step, self.step.action
        if not self.counted:
            self.count_attempt(phase)
        call = ReversalCall(
            phase=phase,
            step_id=step.pk,
            rollback_id=step.rollback_id,
            trigger=step.rollback.trigger,
            operation=policy.operation,
            action={
                "external_id": action.external_id,
                "action_type": action.action_type,
                "subject": action.subject,
                "payload": action.payload,
            },
            config=policy.reversal,
            integrator=integrator,
        )
        try:
            return METHODS[str(policy.method)].run(call)
        except Exception as exc:  # a handler's bug or a missing secret: report it on the step, do not loop on it
            logger.exception("Reversal method %s raised in phase %s of step %s", policy.method, phase, step.pk)
            return PhaseResult(status="failed", detail=f"{type(exc).__name__}: {exc}")

    def count_attempt(self, phase: str) -> None:
        step = self.step
        with transaction.atomic():
            Step.objects.filter(pk=step.pk).update(attempts=F("attempts") + 1)
            step.attempts += 1
            record_event(
                "rollback.step.attempt",
                actor=SYSTEM,
                action_id=step.action_id,
                rollback_id=step.rollback_id,
                data={"step": step.pk, "attempt": step.attempts, "from_phase": phase},
            )
        self.counted = True

    def record_phase(self, phase: str, policy: ActionTypePolicy | None = None) -> None:
        step = self.step
        with transaction.atomic():
            Step.objects.filter(pk=step.pk, outcome=_O.PENDING).update(phase=phase)
            if policy is not None and policy.compensations:
                manifest = policy_of(step.rollback.policy_version_id)
                open_compensations(step, policy.compensations, manifest)
        step.phase = phase

    def failure(self, phase: str, result: PhaseResult) -> StepRun:
        detail = f"{phase}: {result.detail or result.status}"
        if result.retryable:
            attempts = self.step.attempts
            if attempts < settings.WEBHOOK_MAX_ATTEMPTS:
                return StepRun(self.step.pk, self.step.rollback_id, _O.PENDING, retry_in=retry_delay(attempts))
            detail = f"{detail} (gave up after {self.step.attempts} attempts)"
        return self.finish(_O.FAILED, detail)

    def finish(
        self, outcome: str, detail: str, remediation: tuple[str, str] | None = None, **fields: object
    ) -> StepRun:
        with transaction.atomic():
            step = lock_step(self.step.pk)
            if step.outcome == _O.PENDING:
                finish_step(step, outcome, actor=SYSTEM, detail=detail, remediation=remediation, **fields)
            self.step.outcome = step.outcome
        return self.done()
