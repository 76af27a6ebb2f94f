"""Who may do what to a rollback, and when: the one owner of every "may X happen now" answer.

Services ask these functions under the rollback's row lock and turn a refusal into the error they raise (and
audit); the console asks the same functions with the facts its page already loaded, to show only the buttons a
person may press; the workers' gate (`rollbacks.guard`) takes its state sets from here. The answers are pure
functions of a rollback and facts about it (who approved, who signed) so that each caller decides how to read
those facts: the service under its lock, the console from what it prefetched, without extra queries per row.

- sign:      `signing_role` (the role a sign-off fills, or why not)
- cancel:    `cancel_refusal`
- carry on:  `carry_on_refusal` (who: confirm a cascade, retry, resolve, close a remediation task), then
             `confirm_refusal`, `retry_refusal`, `resolve_refusal` (when); `authorize_carry_on` audits a refusal
- see:       `oversees_rollbacks` (remediation and metrics pages); a single rollback is seen through its object
             permission (`rollbacks.selectors.get_rollback_for`)
- in SQL:    `carry_on_sql`, `confirmable_sql`, `step_needs_person_sql`, `remediation_open_sql`: the same answers
             as conditions on a query, for lists of many rollbacks at once (the inbox); change both together
- told:      `people_holding` (who could act on an item, by role, before the rules above narrow them down) and
             `target_approvers`; rollbacks.announcements asks signing_role and carry_on_refusal for each of them
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q

from audit.services import actor_name, record_standalone_event
from policies.manifest import Manifest
from policies.roles import AUDITOR, INTEGRATOR, user_roles
from policies.selectors import NoPolicyLoaded, current_policy
from rollback_console.errors import Conflict, DomainError, Forbidden
from rollbacks.models import (
    NEEDS_PERSON_OUTCOMES,
    RequiredSignoff,
    Rollback,
    RollbackState,
    Step,
    StepOutcome,
    Trigger,
)

_S = RollbackState
_O = StepOutcome

# A paused rollback's cascade may be confirmed (continued one level or more).
CONFIRMABLE_STATES = frozenset({_S.PAUSED})
# A request may be called off until execution starts.
CANCELLABLE_STATES = frozenset({_S.PENDING_AUTHORIZATION, _S.AUTHORIZED})
# A person may retry or resolve a step once execution has started and the rollback is not waiting for sign-off.
STARTED_STATES = frozenset({_S.EXECUTING, _S.PAUSED, _S.COMMUNICATING, _S.PARTIALLY_COMPLETED, _S.FAILED})
# The states in which a rollback should be moving without anyone's help (the sweeper resumes them when stalled).
RUNNING_STATES = frozenset({_S.AUTHORIZED, _S.EXECUTING, _S.COMMUNICATING})
# The states in which no worker may do anything: nobody authorized the rollback, or it was called off.
NEVER_AUTHORIZED = frozenset({_S.PENDING_AUTHORIZATION, _S.REJECTED, _S.CANCELLED})
# The states in which the rollback's own messages (the trigger's notices) may go out.
MESSAGE_STATES = frozenset({_S.COMMUNICATING, _S.COMPLETED, _S.PARTIALLY_COMPLETED, _S.FAILED})
# The outcomes of steps that wait for the engine; any other step is finished and nothing is called for it.
MAY_RUN_OUTCOMES = frozenset({_O.PENDING, _O.AWAITING_CONFIRMATION})
# A step a person may run again; a step a person may resolve is one of models.NEEDS_PERSON_OUTCOMES.
RETRYABLE_OUTCOMES = frozenset({_O.FAILED, _O.PREREQUISITES_UNMET})
RESOLVABLE_OUTCOMES = NEEDS_PERSON_OUTCOMES


@dataclass(frozen=True)
class Refusal:
    """Why something may not happen now: `message` is what the person reads; `status` is the API's answer (403:
    not this person, 409: not now); `about` says whether the person or the rollback's state stands in the way (a
    page that shows the state already need not say it again); `reason` is the audit trail's short form."""

    message: str
    status: Literal[403, 409]
    about: Literal["person", "state"]
    reason: str = ""

    def error(self) -> DomainError:
        return Forbidden(self.message) if self.status == 403 else Conflict(self.message)


# Who signs


def signing_roles(rollback: Rollback) -> frozenset[str]:
    """The roles whose holders sign this rollback: the trigger's, plus an expired window's extras."""
    return frozenset(requirement["role"] for requirement in rollback.required_signoffs)


def policy_signing_roles(manifest: Manifest) -> frozenset[str]:
    """Every role that signs some rollback under this policy, expired-window extras included."""
    roles = {req.role for trigger in manifest.triggers.values() for req in trigger.signoffs}
    roles.update(req.role for req in manifest.window_expired_signoffs)
    return frozenset(roles)


def current_signing_roles() -> frozenset[str]:
    """policy_signing_roles of the current policy; none before a policy is loaded."""
    try:
        return policy_signing_roles(current_policy()[1])
    except NoPolicyLoaded:
        return frozenset()


def signs_under_current_policy(user: Any) -> bool:
    return bool(user_roles(user) & current_signing_roles())


def oversees_rollbacks(user: Any) -> bool:
    """May see the work across rollbacks (remediation tasks, metrics): auditors, and whoever signs some rollback
    under the current policy."""
    return AUDITOR in user_roles(user) or signs_under_current_policy(user)


def holds_signing_role(user: Any, rollback: Rollback) -> bool:
    """A holder of one of the rollback's sign-off roles who did not request it."""
    return user.pk != rollback.requested_by_id and bool(user_roles(user) & signing_roles(rollback))


def approved_its_error(user: Any, rollback: Rollback) -> bool:
    """For `reviewer_error`: this person approved one of the actions the rollback reverses, so their approval is
    the error it undoes, and they may neither verify it nor carry it on (confirm, retry, resolve). One query
    (none for other triggers); a caller that holds the targets already uses approved_any_target instead."""
    return (
        rollback.trigger == Trigger.REVIEWER_ERROR
        and Step.objects.filter(rollback=rollback, depth=0, is_loop=False, action__approved_by=user).exists()
    )


def approved_any_target(user: Any, rollback: Rollback, targets: Iterable[Step]) -> bool:
    """approved_its_error from the rollback's target steps (depth 0, not loops) with their actions loaded."""
    return rollback.trigger == Trigger.REVIEWER_ERROR and any(step.action.approved_by_id == user.pk for step in targets)


# Sign


def missing_roles(rollback: Rollback, approvals: Mapping[str, int]) -> list[str]:
    """The required roles still short of approvals (`approvals`: role -> approvals given), in the manifest's
    order."""
    return [item["role"] for item in rollback.required_signoffs if approvals.get(item["role"], 0) < item["count"]]


def signing_role(
    user: Any, rollback: Rollback, *, signed: bool, approvals: Mapping[str, int], approved_error: bool
) -> str | Refusal:
    """The role this person's sign-off fills, or why they may not sign (separation of duties first).

    `signed`: they signed this rollback already; `approvals`: role -> approvals given; `approved_error`: see
    approved_its_error."""
    if rollback.state != _S.PENDING_AUTHORIZATION:
        return Refusal(
            f"This rollback is {rollback.state}; it takes sign-offs only while pending_authorization.", 409, "state"
        )
    if user.pk == rollback.requested_by_id:
        return Refusal("You requested this rollback: nobody signs off a rollback they requested.", 403, "person")
    if signed:
        return Refusal("You have already signed off this rollback; one person counts once.", 409, "person")
    held = user_roles(user)
    required = [item["role"] for item in rollback.required_signoffs]
    if not held & set(required):
        return Refusal(f"Only {roles_text(required)} sign off this rollback.", 403, "person")
    if approved_error:
        return Refusal(
            "You approved the original action, so you may not verify its rollback; someone else must.", 403, "person"
        )
    for role in missing_roles(rollback, approvals):
        if role in held:
            return role
    return Refusal(
        f"Every role you hold that signs this rollback ({roles_text(sorted(held & set(required)))}) has signed.",
        409,
        "person",
    )


# Cancel


def cancel_refusal(user: Any, rollback: Rollback) -> Refusal | None:
    """The requester or a holder of one of its signing roles calls a rollback off until execution starts."""
    if user.pk != rollback.requested_by_id and not user_roles(user) & signing_roles(rollback):
        return Refusal(
            "Only the requester or a holder of one of its signing roles may cancel this rollback.", 403, "person"
        )
    if rollback.state not in CANCELLABLE_STATES:
        return Refusal(
            f"This rollback is {rollback.state}; it can be cancelled only until execution starts.", 409, "state"
        )
    return None


# Carry on: confirm a cascade, retry, resolve, close a remediation task


def carry_on_refusal(user: Any, rollback: Rollback, *, approved_error: bool) -> Refusal | None:
    """Only a holder of one of the rollback's sign-off roles who did not request it may carry it on; for
    `reviewer_error`, not the approver of an action it reverses either (`approved_error`)."""
    if not holds_signing_role(user, rollback):
        return Refusal(
            "Only a holder of one of this rollback's sign-off roles, other than its requester, may.",
            403,
            "person",
            reason="holds no sign-off role for it",
        )
    if approved_error:
        return Refusal(
            "You approved an action this rollback reverses; someone else must carry it on.",
            403,
            "person",
            reason="approved an action this reviewer_error rollback reverses",
        )
    return None


def authorize_carry_on(user: Any, rollback_id: int, operation: str) -> None:
    """carry_on_refusal for a service, before it locks anything: Forbidden when refused, the refusal audited
    outside the refused change's transaction, so it stays."""
    try:
        rollback = Rollback.objects.get(pk=rollback_id)
    except Rollback.DoesNotExist:
        raise Conflict(f"Rollback {rollback_id} does not exist.") from None
    refusal = carry_on_refusal(user, rollback, approved_error=approved_its_error(user, rollback))
    if refusal is None:
        return
    record_standalone_event(
        "rollback.refused",
        actor=actor_name(user),
        data={"rollback": rollback_id, "operation": operation, "reason": refusal.reason},
    )
    raise refusal.error()


def confirm_refusal(rollback: Rollback) -> Refusal | None:
    if rollback.state not in CONFIRMABLE_STATES:
        return Refusal(
            f"Only a paused rollback's cascade can be confirmed; this one is {rollback.state}.", 409, "state"
        )
    return None


def retry_refusal(rollback: Rollback, step: Step) -> Refusal | None:
    """A `failed` or `prerequisites_unmet` step runs again once execution has started."""
    if rollback.state not in STARTED_STATES or step.outcome not in RETRYABLE_OUTCOMES:
        return Refusal(f"A {step.outcome} step of a {rollback.state} rollback cannot be retried.", 409, "state")
    return None


def resolve_refusal(rollback: Rollback, step: Step) -> Refusal | None:
    """A step waiting for a person is recorded as handled by hand once execution has started."""
    if not may_resolve(rollback, step):
        return Refusal(f"A {step.outcome} step of a {rollback.state} rollback cannot be resolved.", 409, "state")
    return None


def may_resolve(rollback: Rollback, step: Step) -> bool:
    """The one rule that ties a step's Resolve to its remediation task's Mark done, both ways: resolving a step
    closes its open tasks (always); closing a task resolves its step too when this holds, and otherwise only
    closes the task (the step already moved on: retried, or the rollback ended). The pages say which will happen."""
    return rollback.state in STARTED_STATES and step.outcome in RESOLVABLE_OUTCOMES


# The same answers in SQL, for many rollbacks in one query. `to_rollback` is the path from the queried model to
# its rollback: "" for Rollback, "rollback__" for Step, "step__rollback__" for RemediationTask.


def carry_on_sql(user: Any, to_rollback: str = "") -> Q:
    """carry_on_refusal is None, as a condition: a holder of one of the rollback's sign-off roles (its
    RequiredSignoff rows are exactly signing_roles) who did not request it and, for `reviewer_error`, approved
    none of the actions it reverses. No list of ids: the parameters stay the same whatever the number of rows."""
    roles = sorted(user_roles(user))
    if not roles:
        return Q(pk__in=[])
    rollback_id = OuterRef(f"{to_rollback}id")
    holds_role = RequiredSignoff.objects.filter(rollback=rollback_id, role__in=roles)
    approved_error = Step.objects.filter(
        rollback=rollback_id,
        rollback__trigger=Trigger.REVIEWER_ERROR,
        depth=0,
        is_loop=False,
        action__approved_by_id=user.pk,
    )
    return Q(Exists(holds_role)) & ~Q(**{f"{to_rollback}requested_by_id": user.pk}) & ~Q(Exists(approved_error))


def confirmable_sql(to_rollback: str = "") -> Q:
    """confirm_refusal is None."""
    return Q(**{f"{to_rollback}state__in": sorted(CONFIRMABLE_STATES)})


def step_needs_person_sql() -> Q:
    """On Step: retry_refusal or resolve_refusal is None (a person may do one of them now)."""
    return Q(rollback__state__in=sorted(STARTED_STATES), outcome__in=sorted(RETRYABLE_OUTCOMES | RESOLVABLE_OUTCOMES))


def remediation_open_sql() -> Q:
    """On RemediationTask: it may be closed (complete_remediation refuses a task done already)."""
    return Q(done_at__isnull=True)


# Told: who hears of an item in their inbox (rollbacks.announcements)


def people_holding(roles: Iterable[str]) -> list[Any]:
    """The active people holding one of `roles` with an address to write to, integrators excepted (a service
    account reads no mail), their roles loaded in the same query's prefetch. Only candidates: whether each may act
    on an item is signing_role's or carry_on_refusal's answer, asked with the item's facts."""
    wanted = sorted(set(roles))
    if not wanted:
        return []
    integrators = get_user_model().objects.filter(groups__name=INTEGRATOR).values("pk")
    people: list[Any] = list(
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=wanted)
        .exclude(email="")
        .exclude(pk__in=integrators)
        .distinct()
        .order_by("pk")
        .prefetch_related("groups")
    )
    for person in people:
        person._rollback_roles = frozenset(group.name for group in person.groups.all())  # what user_roles reads
    return people


def target_approvers(rollback: Rollback) -> frozenset[int]:
    """For `reviewer_error`, the ids of whoever approved an action the rollback reverses (see approved_its_error);
    empty for other triggers, without a query."""
    if rollback.trigger != Trigger.REVIEWER_ERROR:
        return frozenset()
    return frozenset(
        Step.objects.filter(rollback=rollback, depth=0, is_loop=False).values_list("action__approved_by_id", flat=True)
    )


def roles_text(roles: Iterable[str]) -> str:
    return " or ".join(dict.fromkeys(roles)) or "nobody"
