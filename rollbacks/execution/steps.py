"""Reversing steps: check, reverse, compensations, verify, each phase made durable as it answers ok.

`step.phase` names the last phase that answered ok, so a task delivered again after its worker died resumes
where it stopped and never calls `reverse` twice for one step (the integrator's idempotency key would make a
repeat harmless anyway). Nothing here runs two steps of one action at once: see claims.claim_actions.

Steps come in batches (the steps of one level that one task carries). The phases run in order for the batch,
and within a phase the calls to integrators travel at once (rollbacks.circuits: the worker's thread pool, each
integrator's `max_in_flight` across all workers, and its circuit breaker). What can be written once for the batch
is: the attempts before the calls, the checks that answered, the reversals that answered (per wave of answers
that arrived together), and the endings in one transaction at the end. A worker dying before that transaction
leaves its steps at their last recorded phase; the next delivery calls `verify` again (harmless) and ends them.

A step whose integrator's circuit is open is not called: it stays `pending`, the delivery does not count as an
attempt (a failure that tripped the circuit gives its attempt back), and it is delivered again after the
cool-down (`rollback.step.paused`).
"""

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from actions.models import ActionState, Reversibility
from audit.services import SYSTEM, EventSpec, record_events
from policies.manifest import ActionTypePolicy
from policies.methods import METHODS
from policies.methods.base import Phase, PhaseResult, ReversalCall
from policies.selectors import policy_of
from rollbacks.backoff import max_retry_delay, retry_delay
from rollbacks.circuits import OPEN, Calls, CircuitOpen, calls_to, circuit_of, limits_of, run_concurrently
from rollbacks.communications import (
    Delivery,
    claim_communication,
    deliver_communication,
    notify_integrator,
    open_compensations,
    settle_communication,
)
from rollbacks.execution.claims import claim_actions
from rollbacks.execution.outcomes import StepEnding, end_steps, loop_detail
from rollbacks.guard import admit_steps
from rollbacks.models import Communication, CommunicationStatus, RemediationReason, Step, StepOutcome

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


def execute_steps(step_ids: Sequence[int], *, message: dict[str, Any] | None = None) -> list[StepRun]:
    """Take pending steps as far as they go now, in a constant number of queries per step whatever their number.
    Safe to call again at any time: a finished step is left alone, and a step no worker may run now is refused
    (rollbacks.guard audits why). `message` describes the task that asked (for the trail)."""
    admitted = admit_steps(step_ids, message=message or {"task": "execute_steps"})
    located = [(step.pk, step.action_id, step.rollback_id) for step in admitted]
    with claim_actions(action_id for _, action_id, _ in located) as held:
        waiting = [
            StepRun(pk, rollback_id, _O.PENDING, retry_in=CLAIM_RETRY_SECONDS)
            for pk, action_id, rollback_id in located
            if action_id not in held
        ]
        claimed = [pk for pk, action_id, _ in located if action_id in held]
        return waiting + (_Batch(claimed).run() if claimed else [])


@dataclass
class _Work:
    step: Step
    policy: ActionTypePolicy
    integrator: Mapping[str, Any] | None
    integrator_key: str = ""
    compensations: list[Communication] = field(default_factory=list)
    counted: bool = False  # this delivery was counted as an attempt


class _Batch:
    def __init__(self, step_ids: list[int]) -> None:
        elsewhere = (
            Step.objects.filter(action_id=OuterRef("action_id"))
            .exclude(rollback_id=OuterRef("rollback_id"))
            .filter(_REVERSED_ELSEWHERE)
        )
        self.steps = list(
            Step.objects.filter(pk__in=step_ids)
            .select_related("action", "action__integrator", "rollback")
            .annotate(reversed_elsewhere=Exists(elsewhere))
            .order_by("pk")
        )
        self.endings: dict[int, tuple[str, str, tuple[str, str] | None, dict[str, Any]]] = {}
        self.runs: dict[int, StepRun] = {}
        self.paused: dict[int, tuple[_Work, str, float]] = {}  # step -> (its work, phase, seconds to wait)

    def run(self) -> list[StepRun]:
        work = [item for step in self.steps if (item := self.triage(step)) is not None]
        work = self.hold_open_circuits(work)
        if work:
            # A delivery that only resends compensations counts as an attempt when it calls `verify`, so messages
            # retried on their own budget (NOTIFY_MAX_ATTEMPTS) do not use up the step's.
            self.count_attempts([item for item in work if item.step.phase != "reverse"])
            work = self.check(work)
            work = self.reverse(work)
            work = self.compensate(work)
            self.count_attempts([item for item in work if not item.counted])
            self.verify(work)
        self.finish()
        return [self.runs[step.pk] for step in self.steps]

    # -- the steps that need no call, and the phases in order

    def triage(self, step: Step) -> _Work | None:
        """The work the step needs, or None when it ended without a call (or was no longer pending)."""
        action = step.action
        if step.outcome != _O.PENDING:
            self.runs[step.pk] = StepRun(step.pk, step.rollback_id, step.outcome)
            return None
        ending = self.ending_without_call(step)
        if ending is not None:
            self.end(step, *ending)
            return None
        manifest = policy_of(step.rollback.policy_version_id)
        policy = manifest.action_type(action.action_type)
        assert policy is not None and policy.method is not None  # ending_without_call saw to it
        key = str(policy.reversal.get("integrator", ""))
        return _Work(step, policy, manifest.integrators.get(key) if policy.method == "webhook" else None, key)

    def hold_open_circuits(self, work: list[_Work]) -> list[_Work]:
        """Steps whose integrator's circuit is open wait, uncounted, until its cool-down has passed."""
        states = {key: circuit_of(key) for key in {item.integrator_key for item in work if item.integrator}}
        ready = []
        for item in work:
            state, retry_in = states.get(item.integrator_key, ("", 0.0))
            if state == OPEN:
                self.pause(item, item.step.phase or "check", retry_in)
            else:
                ready.append(item)
        return ready

    def ending_without_call(self, step: Step) -> tuple[str, str, tuple[str, str] | None] | None:
        action = step.action
        if step.is_loop:
            return _O.LOOP_STOPPED, loop_detail(step), None
        reversed_elsewhere = getattr(step, "reversed_elsewhere", False)
        if not step.phase and (
            reversed_elsewhere or action.state in (ActionState.REVERSED, ActionState.PARTIALLY_REVERSED)
        ):
            return _O.ALREADY_REVERSED, "the action was already reversed; nothing was called", None
        policy = policy_of(step.rollback.policy_version_id).action_type(action.action_type)
        if policy is None:
            return _O.FAILED, f"the rollback's policy has no action type {action.action_type!r}", None
        if action.reversibility == Reversibility.IRREVERSIBLE or policy.method is None:
            instructions = str(policy.reversal.get("instructions", "")) or "; ".join(policy.side_effects)
            reason = (RemediationReason.NOT_REVERSIBLE, instructions)
            return _O.NOT_REVERSIBLE, "irreversible: routed to manual remediation", reason
        if policy.method == "manual":
            reason = (RemediationReason.MANUAL_METHOD, str(policy.reversal.get("instructions", "Reverse by hand.")))
            return _O.NOT_REVERSIBLE, "the reversal method is manual: routed to a person", reason
        return None

    def count_attempts(self, work: list[_Work]) -> None:
        if not work:
            return
        with transaction.atomic():
            Step.objects.filter(pk__in=[item.step.pk for item in work]).update(attempts=F("attempts") + 1)
            specs = []
            for item in work:
                step = item.step
                step.attempts += 1
                item.counted = True
                specs.append(
                    EventSpec(
                        "rollback.step.attempt",
                        actor=SYSTEM,
                        action_id=step.action_id,
                        rollback_id=step.rollback_id,
                        data={"step": step.pk, "attempt": step.attempts, "from_phase": step.phase or "start"},
                    )
                )
            record_events(specs)

    def check(self, work: list[_Work]) -> list[_Work]:
        checked: list[Step] = []
        passed = [item for item in work if item.step.phase]
        for item, result in self.call_each([item for item in work if not item.step.phase], "check"):
            if result.status == "unmet":
                names = list(result.unmet) or list(item.policy.prerequisites)
                self.end(item.step, _O.PREREQUISITES_UNMET, f"prerequisites unmet: {', '.join(names)}", unmet=names)
            elif result.status != "ok":
                self.failure(item, "check", result)
            else:
                item.step.phase = "check"
                passed.append(item)
                checked.append(item.step)
        if checked:
            # The durable phase and its events in one transaction: one append for the batch, however many steps.
            with transaction.atomic():
                Step.objects.filter(pk__in=[step.pk for step in checked], outcome=_O.PENDING).update(phase="check")
                record_events(
                    [
                        EventSpec(
                            "rollback.step.checked",
                            actor=SYSTEM,
                            action_id=step.action_id,
                            rollback_id=step.rollback_id,
                            data={"step": step.pk, "phase": "check"},
                        )
                        for step in checked
                    ]
                )
        return sorted(passed, key=lambda item: item.step.pk)

    def reverse(self, work: list[_Work]) -> list[_Work]:
        passed = [item for item in work if item.step.phase != "check"]
        due = [item for item in work if item.step.phase == "check"]
        for wave in self.call_waves(due, "reverse"):
            answered = []
            for item, result in wave:
                if result.status != "ok":
                    self.failure(item, "reverse", result)
                else:
                    answered.append(item)
            if answered:
                self.record_reversed(answered)
                passed.extend(answered)
        return sorted(passed, key=lambda item: item.step.pk)

    def record_reversed(self, items: list[_Work]) -> None:
        """Reversals answered ok: make them durable at once, with the compensations they now owe. One
        transaction and one append for the answers that arrived together (all of a python-method batch)."""
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # Durable against the worker dying, which is what this guards: the server has it once the commit
                # returns. A crash of the database itself may forget the last few: the idempotency key covers that.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            Step.objects.filter(pk__in=[item.step.pk for item in items], outcome=_O.PENDING).update(phase="reverse")
            # The durable fact "the integrator reversed it" enters the trail with the phase, not only at the end.
            record_events(
                [
                    EventSpec(
                        "rollback.step.reverse_answered",
                        actor=SYSTEM,
                        action_id=item.step.action_id,
                        rollback_id=item.step.rollback_id,
                        data={"step": item.step.pk, "phase": "reverse"},
                    )
                    for item in items
                ]
            )
            for item in items:
                if item.policy.compensations:
                    step = item.step
                    open_compensations(step, item.policy.compensations, policy_of(step.rollback.policy_version_id))
        for item in items:
            item.step.phase = "reverse"

    def compensate(self, work: list[_Work]) -> list[_Work]:
        owed: dict[int, list[Communication]] = {}
        for communication in Communication.objects.filter(step_id__in=[item.step.pk for item in work]).order_by("pk"):
            if communication.step_id is not None:
                owed.setdefault(communication.step_id, []).append(communication)
        for item in work:
            item.compensations = owed.get(item.step.pk, [])
        pending = [c for item in work for c in item.compensations if c.status == CommunicationStatus.PENDING]
        deliveries = self.send_compensations(pending) if pending else {}
        passed = []
        for item in work:
            retry_in = None
            for communication in item.compensations:
                delivery = deliveries.get(communication.pk)
                if delivery is None:
                    continue
                communication.status = delivery.status
                if delivery.retry_in is not None:
                    retry_in = max(retry_in or 0.0, delivery.retry_in)
            if retry_in is not None:
                self.runs[item.step.pk] = StepRun(item.step.pk, item.step.rollback_id, _O.PENDING, retry_in=retry_in)
            else:
                passed.append(item)
        return passed

    def send_compensations(self, owed: list[Communication]) -> dict[int, Delivery]:
        """One attempt at each message: claimed one by one, the customers' webhooks sent at once on the worker's
        pool (within their integrators' slots and circuits), emails here, each result settled on its own."""
        deliveries: dict[int, Delivery] = {}
        claimed: list[Communication] = []
        for communication in owed:
            result = claim_communication(communication.pk)
            if isinstance(result, Communication):
                claimed.append(result)
            elif result is not None:
                deliveries[communication.pk] = result
        manifests = {c.pk: policy_of(c.rollback.policy_version_id) for c in claimed}
        webhooks = [c for c in claimed if notify_integrator(c) is not None]
        outcomes: dict[int, tuple[str | None, bool] | CircuitOpen] = {}
        with ExitStack() as stack:
            sessions: dict[str, Calls | CircuitOpen] = {}
            for communication in webhooks:
                key = str(notify_integrator(communication))
                if key in sessions:
                    continue
                wanted = sum(1 for other in webhooks if notify_integrator(other) == key)
                table = manifests[communication.pk].integrators.get(key)
                try:
                    sessions[key] = stack.enter_context(calls_to(key, table, wanted))
                except CircuitOpen as exc:
                    sessions[key] = exc

            def sender(communication: Communication) -> Callable[[], tuple[str | None, bool] | CircuitOpen]:
                session = sessions[str(notify_integrator(communication))]
                if isinstance(session, CircuitOpen):
                    return lambda: session
                return lambda: deliver_communication(communication, manifests[communication.pk], session)

            for wave in run_concurrently([sender(c) for c in webhooks]):
                for index, outcome in wave:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    outcomes[webhooks[index].pk] = outcome
        for communication in claimed:
            if communication.pk in outcomes:
                outcome = outcomes[communication.pk]
            else:
                outcome = deliver_communication(communication, manifests[communication.pk])
            deliveries[communication.pk] = settle_communication(communication, outcome)
        return deliveries

    def verify(self, work: list[_Work]) -> None:
        for item, result in self.call_each(work, "verify"):
            if result.status != "ok":
                self.failure(item, "verify", result)
                continue
            unsent = [c for c in item.compensations if c.status != CommunicationStatus.SENT]
            if not unsent:
                self.end(item.step, _O.REVERSED, "reversed and verified", phase="verify")
                continue
            templates = ", ".join(f"{c.audience} {c.template}" for c in unsent)
            self.end(
                item.step,
                _O.COMPENSATION_FAILED,
                f"reversed and verified, but not sent: {templates}",
                (RemediationReason.COMPENSATION_FAILED, f"Tell them by hand: {templates}."),
                phase="verify",
            )

    # -- calling the method, and ending steps

    def call_each(self, work: list[_Work], phase: Phase) -> list[tuple[_Work, PhaseResult]]:
        return [answer for wave in self.call_waves(work, phase) for answer in wave]

    def call_waves(self, work: list[_Work], phase: Phase) -> Iterator[list[tuple[_Work, PhaseResult]]]:
        """The phase's calls for these steps, all at once where they go to integrators, in waves of answers."""
        with ExitStack() as stack:
            # One session per integrator: its slots are taken together, and its circuit counts the phase's results.
            sessions: dict[str, Calls | CircuitOpen] = {}
            for item in work:
                key = item.integrator_key
                if item.integrator is None or key in sessions:
                    continue
                wanted = sum(1 for other in work if other.integrator is not None and other.integrator_key == key)
                try:
                    sessions[key] = stack.enter_context(calls_to(key, item.integrator, wanted))
                except CircuitOpen as exc:
                    sessions[key] = exc
            calls = [self.prepare(item, phase, sessions.get(item.integrator_key)) for item in work]
            for wave in run_concurrently(calls, inline=not sessions):
                answers = []
                for index, result in wave:
                    if isinstance(result, BaseException):
                        raise result  # prepare() turned every Exception into a result: this is a kill
                    answers.append((work[index], result))
                yield answers

    def prepare(self, item: _Work, phase: Phase, session: Calls | CircuitOpen | None) -> Callable[[], PhaseResult]:
        """The call of one phase of one step, as a function the worker's pool can run: it touches no model."""
        step, action, policy = item.step, item.step.action, item.policy
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
            integrator=item.integrator,
        )
        method = METHODS[str(policy.method)]
        integrator = item.integrator

        def run() -> PhaseResult:
            try:
                if integrator is None or session is None:
                    return method.run(call)
                if isinstance(session, CircuitOpen):
                    raise session
                result, answer = session.call(lambda: method.run(call), transient=_transient)
            except CircuitOpen as exc:
                return PhaseResult(status="failed", detail=str(exc), retryable=True, extra={"paused": exc.retry_in})
            except Exception as exc:  # a handler's bug or a missing secret: report it on the step, do not loop on it
                logger.exception("Reversal method %s raised in phase %s of step %s", policy.method, phase, step.pk)
                return PhaseResult(status="failed", detail=f"{type(exc).__name__}: {exc}")
            if answer.circuit == OPEN and result.retryable:
                # This failure opened the circuit (or found it open): the integrator is down, not the step.
                return replace(result, extra={"paused": limits_of(integrator).cool_down})
            return result

        return run

    def failure(self, item: _Work, phase: str, result: PhaseResult) -> None:
        step = item.step
        if "paused" in result.extra:
            self.pause(item, phase, float(result.extra["paused"]))
            return
        detail = f"{phase}: {result.detail or result.status}"
        if result.retryable:
            if step.attempts < settings.WEBHOOK_MAX_ATTEMPTS:
                self.runs[step.pk] = StepRun(step.pk, step.rollback_id, _O.PENDING, retry_in=retry_delay(step.attempts))
                return
            detail = f"{detail} (gave up after {step.attempts} attempts)"
        self.end(step, _O.FAILED, detail)

    def pause(self, item: _Work, phase: str, retry_in: float) -> None:
        """The integrator's circuit is open: the step waits, pending, and this delivery was no attempt."""
        wait = min(max(retry_in, 1.0), max_retry_delay())
        self.paused[item.step.pk] = (item, phase, wait)
        self.runs[item.step.pk] = StepRun(item.step.pk, item.step.rollback_id, _O.PENDING, retry_in=wait)

    def end(
        self, step: Step, outcome: str, detail: str, remediation: tuple[str, str] | None = None, **fields: Any
    ) -> None:
        self.endings[step.pk] = (outcome, detail, remediation, fields)

    def finish(self) -> None:
        self.finish_paused()
        if not self.endings:
            return
        with transaction.atomic():
            locked = Step.objects.select_for_update().filter(pk__in=list(self.endings), outcome=_O.PENDING)
            now = timezone.now()
            moves = []
            for step in locked.order_by("pk"):
                outcome, detail, remediation, fields = self.endings[step.pk]
                moves.append(StepEnding(step, outcome, detail, {"finished_at": now, **fields}, remediation=remediation))
            end_steps(moves, actor=SYSTEM)
        outcomes = {move.step.pk: move.outcome for move in moves}
        for step in self.steps:
            if step.pk in self.endings:
                outcome = outcomes.get(step.pk) or Step.objects.values_list("outcome", flat=True).get(pk=step.pk)
                self.runs[step.pk] = StepRun(step.pk, step.rollback_id, outcome)

    def finish_paused(self) -> None:
        if not self.paused:
            return
        counted = [pk for pk, (item, _, _) in self.paused.items() if item.counted]
        with transaction.atomic():
            if counted:
                Step.objects.filter(pk__in=counted, outcome=_O.PENDING).update(attempts=F("attempts") - 1)
            record_events(
                [
                    EventSpec(
                        "rollback.step.paused",
                        actor=SYSTEM,
                        action_id=item.step.action_id,
                        rollback_id=item.step.rollback_id,
                        data={
                            "step": item.step.pk,
                            "phase": phase,
                            "integrator": item.integrator_key,
                            "circuit": OPEN,
                            "retry_in": round(wait, 1),
                            "attempt_returned": item.counted,
                        },
                    )
                    for item, phase, wait in self.paused.values()
                ]
            )
        for item, _, _ in self.paused.values():
            if item.counted:
                item.step.attempts -= 1


def _transient(result: PhaseResult) -> bool:
    return result.retryable
