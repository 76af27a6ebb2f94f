"""Permission-aware reads of rollbacks.

Who sees a rollback is decided when it is requested (django-guardian object permissions): its requester, and
the groups of the roles that sign it. Auditors (and anyone holding the model-level view permission) see all.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import django_filters
from django import forms
from django.db.models import Count, Exists, Func, IntegerField, Min, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.http import Http404
from guardian.shortcuts import get_objects_for_user

from actions.selectors import actions_visible_to
from audit.selectors import TrailScope
from policies.roles import AUDITOR, user_roles
from rollbacks.models import (
    FINISHED_OUTCOMES,
    NEEDS_PERSON_OUTCOMES,
    Communication,
    RemediationTask,
    RequiredSignoff,
    Rollback,
    RollbackState,
    SignOff,
    SignoffDecision,
    Step,
    StepOutcome,
    Trigger,
)

VIEW_ROLLBACK = "rollbacks.view_rollback"
MAX_ID = 2**63 - 1


def rollbacks_visible_to(user: Any) -> QuerySet[Rollback]:
    if not getattr(user, "is_authenticated", False):
        return Rollback.objects.none()
    if AUDITOR in user_roles(user) or user.has_perm(VIEW_ROLLBACK):
        return Rollback.objects.all()
    return get_objects_for_user(user, VIEW_ROLLBACK, klass=Rollback, accept_global_perms=False)


def visible_rollback_ids(user: Any, ids: Iterable[int]) -> set[int]:
    """Which of these rollbacks `user` may open, in one query: a page that names rollbacks links only those."""
    wanted = {pk for pk in ids if pk is not None}
    if not wanted:
        return set()
    return set(rollbacks_visible_to(user).filter(pk__in=wanted).values_list("pk", flat=True))


def trail_scope_for(user: Any) -> TrailScope | None:
    """What of the audit trail `user` may read, by the same rules as the objects (settings.AUDIT_TRAIL_SCOPE
    names this): None, all of it, for auditors; otherwise the events of the actions and rollbacks they may see,
    as subqueries, so a reader of millions of events costs one query, not a list of ids."""
    if AUDITOR in user_roles(user):
        return None
    actions = actions_visible_to(user)
    rollbacks = rollbacks_visible_to(user)
    # An unfiltered queryset means "every one": no subquery for it.
    return TrailScope(
        action_ids=actions.values("pk") if actions.query.has_filters() else None,
        rollback_ids=rollbacks.values("pk") if rollbacks.query.has_filters() else None,
    )


# The GET shape carries at most this many steps (the first by depth and id): all of them for a rollback of up to
# this many, and the rest through GET /api/v1/rollbacks/{id}/steps/ (rollback_steps), so reading an incident of
# 100,000 actions costs what reading one of a thousand does.
STEPS_INLINE = 1000


def with_details(rollbacks: QuerySet[Rollback]) -> QuerySet[Rollback]:
    """Everything the GET shape shows, in a constant number of queries whatever the number of steps (at most
    STEPS_INLINE steps are loaded; step_counts_of counts them all)."""
    return rollbacks.select_related("requested_by").prefetch_related(
        Prefetch("signoffs", queryset=SignOff.objects.select_related("signer").order_by("at", "id")),
        Prefetch(
            "steps",
            queryset=Step.objects.only(
                "id", "rollback_id", "action_id", "depth", "outcome", "attempts", "detail", "is_loop"
            ).order_by("depth", "id")[:STEPS_INLINE],
            to_attr="inline_steps",  # a sliced prefetch cannot fill the `steps` manager's cache
        ),
        Prefetch("communications", queryset=Communication.objects.order_by("id")),
    )


def with_signoffs(rollbacks: QuerySet[Rollback]) -> QuerySet[Rollback]:
    """What a list shows: the rollback and its sign-offs, without the steps."""
    return rollbacks.select_related("requested_by").prefetch_related(
        Prefetch("signoffs", queryset=SignOff.objects.select_related("signer").order_by("at", "id"))
    )


def get_rollback_for(user: Any, rollback_id: Any, *, details: bool = True) -> Rollback:
    """The rollback with its details (with_details; only its requester without them) if `user` may see it;
    Http404 otherwise."""
    try:
        pk = int(rollback_id)
    except (TypeError, ValueError):
        raise Http404("No such rollback.") from None
    if not 0 < pk <= MAX_ID:
        raise Http404("No such rollback.")
    visible = rollbacks_visible_to(user).filter(pk=pk)
    rollback = (with_details(visible) if details else visible.select_related("requested_by")).first()
    if rollback is None:
        raise Http404("No such rollback.")
    return rollback


def queue_for(user: Any) -> QuerySet[Rollback]:
    """The requests waiting for the user's sign-off, newest first, in one query: pending authorization, with a
    required role the user holds whose count still exceeds the approvals given in it, not requested or already
    signed by them, and (for reviewer_error) not reversing an action they approved.

    It needs no object-permission filter: when a rollback is requested, the groups of its signing roles (exactly
    its RequiredSignoff roles) get the view permission on it, so whoever holds a role it still misses sees it.
    Nor does it read any list of ids: the number of parameters stays the same however many requests wait."""
    roles = user_roles(user)
    if not roles:
        return Rollback.objects.none()
    # A plain COUNT (no GROUP BY, so 0 rather than no row): PostgreSQL then plans the whole queue as hash
    # joins, where a grouped count made it probe rollback by rollback.
    approvals_in_role = (
        SignOff.objects.filter(rollback=OuterRef("rollback"), role=OuterRef("role"), decision=SignoffDecision.APPROVE)
        .order_by()
        .annotate(n=Func(Value(1), function="COUNT", output_field=IntegerField()))
        .values("n")
    )
    missing_role_held = RequiredSignoff.objects.filter(
        rollback=OuterRef("pk"), role__in=sorted(roles), count__gt=Subquery(approvals_in_role)
    )
    # The trigger inside the subquery, not beside it: a plain NOT EXISTS that PostgreSQL runs as an anti join.
    approved_by_user = Step.objects.filter(
        rollback=OuterRef("pk"),
        rollback__trigger=Trigger.REVIEWER_ERROR,
        depth=0,
        is_loop=False,
        action__approved_by_id=user.pk,
    )
    signed_by_user = SignOff.objects.filter(rollback=OuterRef("pk"), signer_id=user.pk)
    return (
        Rollback.objects.filter(Exists(missing_role_held), state=RollbackState.PENDING_AUTHORIZATION)
        .exclude(requested_by_id=user.pk)
        .exclude(Exists(signed_by_user))
        .exclude(Exists(approved_by_user))
        .order_by("-created_at", "-id")
    )


def steps_of(rollback: Rollback) -> list[Step]:
    """The rollback's steps with their actions and approvers, by depth; for a reader get_rollback_for let in."""
    return list(
        Step.objects.filter(rollback=rollback)
        .select_related("action", "action__approved_by", "action__integrator")
        .order_by("depth", "id")
    )


def targets_of(rollback: Rollback, *, limit: int) -> list[Step]:
    """The first `limit` target steps (depth 0, not loops) with their actions and approvers; for a reader
    get_rollback_for let in."""
    return list(
        Step.objects.filter(rollback=rollback, depth=0, is_loop=False)
        .select_related("action", "action__approved_by")
        .order_by("id")[:limit]
    )


def step_counts_of(rollback: Rollback) -> dict[str, int]:
    """How many of the rollback's steps have each outcome (every outcome named, 0 included), in one query
    counted by the database, kept on the instance so the API's fields and the console's progress ask once; for a
    reader get_rollback_for let in."""
    cached: dict[str, int] | None = getattr(rollback, "_step_counts", None)
    if cached is None:
        counted = dict(Step.objects.filter(rollback=rollback).order_by().values_list("outcome").annotate(n=Count("pk")))
        cached = {outcome: counted.get(outcome, 0) for outcome in StepOutcome.values}
        rollback._step_counts = cached  # type: ignore[attr-defined]  # a cache on this instance only
    return cached


def target_facts(rollback: Rollback) -> tuple[Any, list[str], list[str]]:
    """What the request page says about the whole plan without loading its steps: the earliest reversal window
    among the targets, and the prerequisites and side effects of every planned action (distinct, sorted). Two
    queries whatever the number of steps; for a reader get_rollback_for let in."""
    steps = Step.objects.filter(rollback=rollback)
    window = steps.filter(depth=0, is_loop=False).aggregate(closes=Min("action__window_ends_at"))["closes"]
    prerequisites: set[str] = set()
    side_effects: set[str] = set()
    distinct = steps.order_by().values_list("action__prerequisites", "action__side_effects").distinct()
    for each_prerequisites, each_side_effects in distinct.iterator(chunk_size=2000):
        prerequisites.update(each_prerequisites or [])
        side_effects.update(each_side_effects or [])
    return window, sorted(prerequisites), sorted(side_effects)


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
    """Open tasks oldest first (or done ones, last done first) with their steps' actions and rollbacks, of the
    rollbacks `user` may see (a task shows its rollback's action and why it needs a person); complete_remediation
    decides who may close each. An anonymous user gets none."""
    if not getattr(user, "is_authenticated", False):
        return RemediationTask.objects.none()
    visible = rollbacks_visible_to(user)
    tasks = RemediationTask.objects.select_related("step__action", "step__rollback", "done_by")
    if visible.query.has_filters():
        tasks = tasks.filter(step__rollback__in=visible.values("pk"))
    if done:
        return tasks.filter(done_at__isnull=False).order_by("-done_at", "-id")
    return tasks.filter(done_at__isnull=True).order_by("created_at", "id")


def get_remediation_task_for(user: Any, task_id: int) -> RemediationTask:
    """The task, open or done, if `user` may see its rollback; Http404 otherwise, so a hidden task answers as a
    missing one does (no message that tells them apart)."""
    if not 0 < task_id <= MAX_ID:
        raise Http404("No such remediation task.")
    task = (
        RemediationTask.objects.filter(pk=task_id, step__rollback__in=rollbacks_visible_to(user).values("pk"))
        .select_related("step__rollback")
        .first()
    )
    if task is None:
        raise Http404("No such remediation task.")
    return task


def rollbacks_of_action(action_id: int) -> list[dict[str, Any]]:
    """Every rollback that includes the action, from the moment it is requested, with this action's step
    outcome (its own step, not a loop arrival's, when it has both); one query. For whoever may see the action:
    an action's page lists them by id, trigger and state, as the contract's action detail does."""
    rollbacks: dict[int, dict[str, Any]] = {}
    steps = (
        Step.objects.filter(action_id=action_id)
        .select_related("rollback")
        .only("rollback_id", "is_loop", "outcome", "rollback__trigger", "rollback__state")
        .order_by("rollback_id", "is_loop")
    )
    for step in steps:
        if step.rollback_id not in rollbacks:
            rollback = step.rollback
            rollbacks[step.rollback_id] = {
                "id": rollback.pk,
                "trigger": rollback.trigger,
                "state": rollback.state,
                "outcome": step.outcome,
            }
    return list(rollbacks.values())


def requested_by(user: Any, *, limit: int) -> list[Rollback]:
    """The newest rollbacks this person requested (that they may still see)."""
    return list(
        rollbacks_visible_to(user)
        .filter(requested_by_id=user.pk)
        .select_related("requested_by")
        .order_by("-created_at")[:limit]
    )


def _one_of(values: list[str]) -> dict[str, str]:
    return {"invalid_choice": f"Must be one of {', '.join(values)}."}


class RollbackFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter ships no types
    """The filters of a list of rollbacks: the API's list (RollbackListFilter) and the console's queue parse
    them with this one class, so a value one accepts the other accepts too."""

    state = django_filters.ChoiceFilter(choices=RollbackState.choices, error_messages=_one_of(RollbackState.values))
    trigger = django_filters.ChoiceFilter(choices=Trigger.choices, error_messages=_one_of(Trigger.values))

    class Meta:
        model = Rollback
        fields = ["state", "trigger"]


class RollbackListFilter(RollbackFilter):
    """The API's list adds `queue=mine`: the requests waiting for the caller's sign-off (queue_for), which
    chooses the rows to filter rather than filtering them (rollbacks_listed_for)."""

    queue = django_filters.ChoiceFilter(
        choices=[("mine", "mine")],
        method="_rows_chosen_already",
        error_messages={"invalid_choice": 'Only "mine" (the requests waiting for your sign-off).'},
    )

    class Meta(RollbackFilter.Meta):
        fields = ["state", "trigger", "queue"]

    def _rows_chosen_already(self, queryset: QuerySet[Rollback], name: str, value: str) -> QuerySet[Rollback]:
        return queryset


MAX_SEARCH_LENGTH = 255


def rollbacks_found_for(user: Any, filters: RollbackFilter, search: str = "") -> QuerySet[Rollback]:
    """The console's Rollbacks page: every rollback `user` may see, filtered by `filters` (already valid: its
    state and trigger) and by `search` (a rollback's id, or words of its reason, reference or requester's name),
    with the requester, newest first."""
    rollbacks: QuerySet[Rollback] = filters.filter_queryset(rollbacks_visible_to(user))
    search = search.strip()[:MAX_SEARCH_LENGTH]
    if search:
        found = (
            Q(reason__icontains=search) | Q(reference__icontains=search) | Q(requested_by__username__icontains=search)
        )
        number = search.removeprefix("#")
        if number.isascii() and number.isdigit() and 0 < int(number) <= MAX_ID:
            found |= Q(pk=int(number))
        rollbacks = rollbacks.filter(found)
    return rollbacks.select_related("requested_by").order_by("-created_at", "-id")


def rollbacks_listed_for(user: Any, filters: RollbackListFilter) -> QuerySet[Rollback]:
    """The API's list: the rollbacks `user` may see (or those waiting for them), filtered by `filters` (already
    valid), with their sign-offs, newest first."""
    chosen = filters.form.cleaned_data
    rollbacks = queue_for(user) if chosen.get("queue") else rollbacks_visible_to(user)
    return with_signoffs(filters.filter_queryset(rollbacks)).order_by("-created_at", "-id")


def step_of(rollback: Rollback, step_id: Any) -> int:
    """The id of the rollback's step `step_id`; Http404 when it is no step of this rollback. One query."""
    try:
        pk = int(step_id)
    except (TypeError, ValueError):
        raise Http404("No such step in this rollback.") from None
    if not 0 < pk <= MAX_ID or not Step.objects.filter(rollback=rollback, pk=pk).exists():
        raise Http404("No such step in this rollback.")
    return pk


@dataclass(frozen=True)
class StepProgress:
    """A rollback's progress from its step counts (step_counts_of): the console's bar and the API's `progress`."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in FINISHED_OUTCOMES)

    @property
    def needs_person(self) -> int:
        return sum(self.counts.get(outcome, 0) for outcome in NEEDS_PERSON_OUTCOMES)

    @property
    def waiting(self) -> int:
        return self.counts.get(StepOutcome.AWAITING_CONFIRMATION, 0)

    @property
    def by_outcome(self) -> list[tuple[str, int]]:
        return sorted((outcome, n) for outcome, n in self.counts.items() if n)

    @property
    def percent(self) -> int:
        """The share of steps done: a step waiting for a person is not done, so "0 of 1 done" is 0 %. Floor, so
        it reaches 100 only when every step is done ("99 of 100" is 99, not a rounded 100); 0 for no step."""
        return self._share(self.finished)

    @property
    def needs_person_percent(self) -> int:
        """Drawn apart from the done part of the bar, so a stuck step shows as such and not as progress."""
        return min(self._share(self.finished + self.needs_person), 100) - self.percent

    def _share(self, count: int) -> int:
        return 100 * count // self.total if self.total else 0


def pending_action_types(rollback: Rollback) -> list[str]:
    """The action types of the rollback's steps still pending (whose integrators' circuits the page reports)."""
    pending = Step.objects.filter(rollback=rollback, outcome=StepOutcome.PENDING)
    return list(pending.values_list("action__action_type", flat=True).distinct())


def progress_of(rollback: Rollback) -> StepProgress:
    return StepProgress(step_counts_of(rollback))


class _WholeNumberFilter(django_filters.NumberFilter):  # type: ignore[misc]  # django-filter ships no types
    field_class = forms.IntegerField


class StepFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter ships no types
    """The filters of a rollback's steps, shared by GET /api/v1/rollbacks/{id}/steps/ and the console's request
    page: `outcome` (repeatable: any of them) and `depth`."""

    outcome = django_filters.MultipleChoiceFilter(
        choices=StepOutcome.choices, error_messages=_one_of(StepOutcome.values)
    )
    depth = _WholeNumberFilter(min_value=0, max_value=32767)

    class Meta:
        model = Step
        fields = ["outcome", "depth"]


def rollback_steps(rollback: Rollback, filters: StepFilter | None = None) -> QuerySet[Step]:
    """The rollback's steps by depth and id, filtered by `filters` (already valid), with their actions: a
    queryset, read a page at a time by the API and the console; for a reader get_rollback_for let in."""
    steps = Step.objects.filter(rollback=rollback)
    if filters is not None:
        steps = filters.filter_queryset(steps)
    # The actions of a page in a query of their own: a join would be sorted whole before the page is cut.
    return steps.prefetch_related("action").order_by("depth", "id")
