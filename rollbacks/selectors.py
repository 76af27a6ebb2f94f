"""Permission-aware reads of rollbacks.

Who sees a rollback is decided when it is requested (django-guardian object permissions): its requester, and
the groups of the roles that sign it. Auditors (and anyone holding the model-level view permission) see all.
"""

from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from policies.roles import AUDITOR
from rollbacks.models import (
    Communication,
    RemediationTask,
    Rollback,
    RollbackState,
    SignOff,
    SignoffDecision,
    Step,
    Trigger,
)
from rollbacks.roles import user_roles

VIEW_ROLLBACK = "rollbacks.view_rollback"
MAX_ID = 2**63 - 1


def rollbacks_visible_to(user: Any) -> QuerySet[Rollback]:
    if not getattr(user, "is_authenticated", False):
        return Rollback.objects.none()
    if AUDITOR in user_roles(user) or user.has_perm(VIEW_ROLLBACK):
        return Rollback.objects.all()
    return get_objects_for_user(user, VIEW_ROLLBACK, klass=Rollback, accept_global_perms=False)


def with_details(rollbacks: QuerySet[Rollback]) -> QuerySet[Rollback]:
    """Everything the GET shape shows, in a constant number of queries whatever the number of steps."""
    return rollbacks.select_related("requested_by").prefetch_related(
        Prefetch("signoffs", queryset=SignOff.objects.select_related("signer").order_by("at", "id")),
        Prefetch(
            "steps",
            queryset=Step.objects.only(
                "id", "rollback_id", "action_id", "depth", "outcome", "attempts", "detail", "is_loop"
            ).order_by("depth", "id"),
        ),
        Prefetch("communications", queryset=Communication.objects.order_by("id")),
    )


def with_signoffs(rollbacks: QuerySet[Rollback]) -> QuerySet[Rollback]:
    """What a list shows: the rollback and its sign-offs, without the steps."""
    return rollbacks.select_related("requested_by").prefetch_related(
        Prefetch("signoffs", queryset=SignOff.objects.select_related("signer").order_by("at", "id"))
    )


def get_rollback_for(user: Any, rollback_id: Any) -> Rollback:
    """The rollback with its details if `user` may see it; Http404 otherwise."""
    try:
        pk = int(rollback_id)
    except (TypeError, ValueError):
        raise Http404("No such rollback.") from None
    if not 0 < pk <= MAX_ID:
        raise Http404("No such rollback.")
    rollback = with_details(rollbacks_visible_to(user).filter(pk=pk)).first()
    if rollback is None:
        raise Http404("No such rollback.")
    return rollback


def queue_for(user: Any) -> QuerySet[Rollback]:
    """The requests waiting for the user's sign-off: pending authorization, needing a role the user holds that
    is still missing, not requested or already signed by them, and (for reviewer_error) not reversing an action
    they approved. Newest first. The role arithmetic runs over the pending requests only."""
    roles = user_roles(user)
    if not roles:
        return Rollback.objects.none()
    approved_by_user = Step.objects.filter(
        rollback=OuterRef("pk"), depth=0, is_loop=False, action__approved_by_id=user.pk
    )
    candidates = (
        rollbacks_visible_to(user)
        .filter(state=RollbackState.PENDING_AUTHORIZATION)
        .exclude(requested_by_id=user.pk)
        .exclude(signoffs__signer_id=user.pk)
        .exclude(Exists(approved_by_user), trigger=Trigger.REVIEWER_ERROR)
    )
    required = dict(candidates.values_list("pk", "required_signoffs"))
    given: dict[tuple[int, str], int] = {}
    for rollback_id, role in SignOff.objects.filter(
        rollback_id__in=list(required), decision=SignoffDecision.APPROVE
    ).values_list("rollback_id", "role"):
        given[(rollback_id, role)] = given.get((rollback_id, role), 0) + 1
    waiting = [
        pk
        for pk, requirements in required.items()
        if any(item["role"] in roles and given.get((pk, item["role"]), 0) < item["count"] for item in requirements)
    ]
    return Rollback.objects.filter(pk__in=waiting).order_by("-created_at", "-id")


def steps_of(rollback: Rollback) -> list[Step]:
    """The rollback's steps with their actions and approvers, by depth; for a reader get_rollback_for let in."""
    return list(
        Step.objects.filter(rollback=rollback)
        .select_related("action", "action__approved_by", "action__integrator")
        .order_by("depth", "id")
    )


def step_outcomes(rollback: Rollback) -> list[str]:
    """Each of the rollback's steps' outcome and nothing else; for a reader get_rollback_for let in."""
    return list(Step.objects.filter(rollback=rollback).values_list("outcome", flat=True))


def signoffs_of(rollback: Rollback) -> list[SignOff]:
    """The rollback's sign-offs with their signers, oldest first; for a reader get_rollback_for let in."""
    return list(rollback.signoffs.select_related("signer").order_by("at", "id"))


def communications_of(rollback: Rollback) -> list[Communication]:
    """The rollback's communications with their steps' actions, by id; for a reader get_rollback_for let in."""
    return list(rollback.communications.select_related("step__action").order_by("id"))


def remediation_of(rollback: Rollback) -> list[RemediationTask]:
    """The remediation tasks the rollback's steps opened, by id; for a reader get_rollback_for let in."""
    return list(
        RemediationTask.objects.filter(step__rollback=rollback).select_related("step__action", "done_by").order_by("id")
    )


def remediation_tasks_for(user: Any, *, done: bool = False) -> QuerySet[RemediationTask]:
    """Open tasks oldest first (or done ones, last done first) with their steps' actions and rollbacks.

    Every signed-in user gets every task, not only those of rollbacks they may see: the console lets onto the
    remediation page whoever signs some rollback under the current policy, and auditors, and complete_remediation
    decides who may close each task. An anonymous user gets none."""
    if not getattr(user, "is_authenticated", False):
        return RemediationTask.objects.none()
    tasks = RemediationTask.objects.select_related("step__action", "step__rollback", "done_by")
    if done:
        return tasks.filter(done_at__isnull=False).order_by("-done_at", "-id")
    return tasks.filter(done_at__isnull=True).order_by("created_at", "id")
