"""Requesting, signing off and cancelling rollbacks (the contract's "Rollbacks").

A request freezes its target set and plan when it is created: one Step per action the cascade reaches (plus one
per loop arrival), inserted level by level, so the number of queries grows with the graph's depth, never with
the number of actions. Separation of duties is checked under the rollback's row lock whatever the manifest says.
Every refusal is audited in a transaction of its own that commits before the refusal is raised.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from guardian.shortcuts import assign_perm

from actions.cascade import CascadeNode, CascadeWalk, walk_cascade
from actions.models import Action, ActionState
from actions.selectors import actions_visible_to, select_actions
from actions.services import change_action_states
from audit.services import actor_name, record_event
from policies.manifest import Manifest, TriggerPolicy
from policies.roles import user_roles
from policies.selectors import NoPolicyLoaded, current_policy
from rollback_console.errors import Conflict, DomainError, Forbidden, Invalid
from rollbacks.dispatch import queue_announcing, queue_rollback
from rollbacks.events import REQUESTED, open_integrator_events
from rollbacks.models import (
    LIVE_STATES,
    RequiredSignoff,
    Rollback,
    RollbackState,
    SignOff,
    SignoffDecision,
    Step,
    Trigger,
)
from rollbacks.rules import (
    Refusal,
    approved_its_error,
    cancel_refusal,
    missing_roles,
    roles_text,
    signing_role,
    signing_roles,
)
from rollbacks.selectors import rollbacks_visible_to
from rollbacks.transitions import lock_rollback, move_rollback

VIEW_ROLLBACK = "rollbacks.view_rollback"
# What the plan counts as "already reversed": an earlier rollback undid it (wholly, partly, or by hand).
ALREADY_REVERSED_STATES = frozenset(
    {ActionState.REVERSED, ActionState.PARTIALLY_REVERSED, ActionState.MANUALLY_RESOLVED}
)
MAX_REASON_LENGTH = 10_000
MAX_REFERENCE_LENGTH = 200
REFUSAL_IDS_KEPT = 100  # a refused request's audit event keeps this many of the ids it named
MAX_ID = 2**63 - 1  # the largest id a BigAutoField holds; a larger number is no id (and overflows SQLite)
# SQLite refuses statements with more than 32,766 parameters; PostgreSQL takes any number of ids at once.
_SQLITE_CHUNK = 30_000
MAX_BATCH = 100  # requests one batch decision may cover (the queue shows 25 a page)
# Steps inserted, and actions moved to rollback_pending (each audited), per statement when a request is filed: an
# incident of 100,000 actions is written in batches, and no list of every step or event is ever built.
FREEZE_BATCH = 2000


@dataclass(frozen=True)
class Plan:
    """What a request would freeze: shown by the console before submitting, stored by request_rollback."""

    trigger: str
    reason: str
    reference: str | None
    policy_version_id: int
    max_cascade_depth: int
    selector: dict[str, Any] | None
    required_signoffs: list[dict[str, Any]]  # [{"role", "count"}], an expired window's extras merged in
    counts: dict[str, Any]  # {"actions", "cascade", "irreversible", "window_expired", "action_ids"}
    window_closes_at: datetime | None  # the earliest reversal window among the targets
    walk: CascadeWalk
    claimable: list[int]  # planned actions whose state is executed or rollback_pending


def plan_rollback(
    *,
    requester: Any,
    trigger: Any,
    reason: Any,
    actions: Any = None,
    selector: Any = None,
    max_cascade_depth: Any = None,
    reference: Any = "",
) -> Plan:
    """The plan a request would freeze, without writing anything (a refused requester is audited)."""
    version_id, manifest, policy = ensure_may_request(requester, trigger, actions=actions)
    return _plan(
        requester=requester,
        policy=policy,
        manifest=manifest,
        version_id=version_id,
        reason=reason,
        actions=actions,
        selector=selector,
        max_cascade_depth=max_cascade_depth,
        reference=reference,
    )


def ensure_may_request(requester: Any, trigger: Any, *, actions: Any = None) -> tuple[int, Manifest, TriggerPolicy]:
    """The current policy (version id, manifest) and the trigger's, if the requester holds a role in its
    `requested_by`; otherwise Forbidden, the refusal audited in a transaction of its own (about each named
    action that exists, so the action's trail shows it). Call it outside any transaction that could still roll
    back."""
    version_id, manifest = _policy()
    policy = _trigger_policy(manifest, trigger)
    if user_roles(requester) & set(policy.requested_by):
        return version_id, manifest, policy
    message = f"Only {roles_text(policy.requested_by)} may request a {policy.name} rollback."
    # One event per refused request, however many actions it names: a caller without the role must not be able to
    # grow the trail by the length of its list. The first REFUSAL_IDS_KEPT distinct ids that exist are kept, with
    # the number named; a refusal about one action is tied to it, so that action's trail shows it.
    named: list[int] = []
    if isinstance(actions, list):
        valid = (pk for pk in actions if isinstance(pk, int) and not isinstance(pk, bool) and 0 < pk <= MAX_ID)
        named = list(dict.fromkeys(valid))
    kept = sorted(Action.objects.filter(pk__in=named[:REFUSAL_IDS_KEPT]).values_list("pk", flat=True)) if named else []
    data = {
        "operation": "request",
        "trigger": policy.name,
        "reason": message,
        "actions": kept,
        "actions_named": len(named),
    }
    with transaction.atomic():
        record_event(
            "rollback.refused",
            actor=actor_name(requester),
            action_id=kept[0] if len(named) == 1 and kept else None,
            data=data,
        )
    raise Forbidden(message)


def request_rollback(
    *,
    requester: Any,
    trigger: Any,
    reason: Any,
    actions: Any = None,
    selector: Any = None,
    max_cascade_depth: Any = None,
    reference: Any = "",
) -> Rollback:
    """File a rollback: freeze its targets, cascade and plan, mark the actions rollback_pending, let the
    requester and the signing roles see it, and audit it linked to every planned action."""
    version_id, manifest, policy = ensure_may_request(requester, trigger, actions=actions)
    with transaction.atomic():
        plan = _plan(
            requester=requester,
            policy=policy,
            manifest=manifest,
            version_id=version_id,
            reason=reason,
            actions=actions,
            selector=selector,
            max_cascade_depth=max_cascade_depth,
            reference=reference,
        )
        actor = actor_name(requester)
        rollback = _create_rollback(plan, requester)
        _freeze_steps(rollback, plan.walk)
        for start in range(0, len(plan.claimable), FREEZE_BATCH):  # each batch's events are built and dropped
            change_action_states(
                {pk: ActionState.ROLLBACK_PENDING for pk in plan.claimable[start : start + FREEZE_BATCH]},
                actor=actor,
                rollback_id=rollback.pk,
            )
        assign_perm(VIEW_ROLLBACK, requester, rollback)
        assign_perm(VIEW_ROLLBACK, Group.objects.filter(name__in=signing_roles(rollback)), rollback)
        record_event(
            "rollback.requested",
            actor=actor,
            rollback_id=rollback.pk,
            data={
                "trigger": plan.trigger,
                "reason": plan.reason,
                "reference": plan.reference,
                "selector": plan.selector,
                "max_cascade_depth": plan.max_cascade_depth,
                "required_signoffs": plan.required_signoffs,
                "plan": plan.counts,
                "policy_version": plan.policy_version_id,
            },
            links=plan.walk.nodes.keys(),
        )
        open_integrator_events(rollback, REQUESTED)
        queue_announcing()  # its signers are told
    return rollback


def sign_off(rollback_id: int, *, signer: Any, decision: Any, comment: Any = "") -> Rollback:
    """Approve or reject in the first required role the signer holds that is still missing. The approval that
    completes every requirement authorizes the rollback and queues its execution once, after commit."""
    comment = _checked_decision(decision, comment)
    actor = actor_name(signer)
    refusal: DomainError | None = None
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        try:
            role = _role_to_fill(rollback, signer)
        except DomainError as error:
            refusal = error
            record_event(
                "rollback.signoff_refused",
                actor=actor,
                rollback_id=rollback.pk,
                data={"decision": decision, "reason": error.message, "status": error.status_code},
            )
        else:
            SignOff.objects.create(rollback=rollback, signer=signer, role=role, decision=decision, comment=comment)
            record_event(
                "rollback.signoff",
                actor=actor,
                rollback_id=rollback.pk,
                data={"role": role, "decision": decision, "comment": comment},
            )
            if decision == SignoffDecision.REJECT:
                move_rollback(
                    rollback, RollbackState.REJECTED, actor=actor, data={"role": role}, finished_at=timezone.now()
                )
                _release_actions(rollback, actor=actor)
            elif not _missing_roles(rollback):
                move_rollback(rollback, RollbackState.AUTHORIZED, actor=actor, authorized_at=timezone.now())
                queue_rollback(rollback.pk)  # once, after the authorizing transaction commits
    if refusal is not None:
        raise refusal
    return rollback


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one request in a batch decision: signed, or refused and why (`refusal.message` is what the
    person reads). `rollback` is as it stands after the whole batch."""

    rollback: Rollback
    refusal: Refusal | None

    @property
    def signed(self) -> bool:
        return self.refusal is None


def sign_off_many(rollback_ids: Sequence[int], *, signer: Any, decision: Any, comment: Any = "") -> list[BatchOutcome]:
    """One decision with one comment over several requests of one trigger. Each request is signed on its own by
    sign_off (its own transaction, its rules under its own lock, its own audit), so one refusal (a colleague
    signed first, the signer filed it) leaves the others signed. The selection is checked first and nothing is
    signed when it is wrong: ids the signer may not see (told apart from ids that do not exist by nobody), more
    than MAX_BATCH, or requests of different triggers. Call it outside a transaction."""
    comment = _checked_decision(decision, comment)
    ids = _batch_ids(rollback_ids)
    selected = {rollback.pk: rollback for rollback in rollbacks_visible_to(signer).filter(pk__in=ids)}
    unknown = [pk for pk in ids if pk not in selected]
    if unknown:
        listed = ", ".join(f"#{pk}" for pk in unknown[:10]) + (" …" if len(unknown) > 10 else "")
        raise Invalid({"rollback": [f"No rollback you may see has the number {listed}; nothing was signed."]})
    triggers = sorted({rollback.trigger for rollback in selected.values()})
    if len(triggers) > 1:
        raise Invalid(
            {
                "rollback": [
                    "A batch decision covers requests of one trigger; these are "
                    f"{' and '.join(triggers)}. Nothing was signed."
                ]
            }
        )
    refusals: dict[int, Refusal] = {}
    for pk in ids:
        try:
            sign_off(pk, signer=signer, decision=decision, comment=comment)
        except DomainError as error:
            refusals[pk] = _as_refusal(error)
    after = rollbacks_visible_to(signer).filter(pk__in=ids).select_related("requested_by").in_bulk()
    return [BatchOutcome(rollback=after[pk], refusal=refusals.get(pk)) for pk in ids]


def _checked_decision(decision: Any, comment: Any) -> str:
    """A sign-off's decision and comment checked (the comment returned as text)."""
    if decision not in SignoffDecision.values:
        raise Invalid({"decision": ['Must be "approve" or "reject".']})
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise Invalid({"comment": ["Must be text."]})
    return comment


def _batch_ids(rollback_ids: Any) -> list[int]:
    """The distinct ids of a batch, in the order given."""
    if not isinstance(rollback_ids, list | tuple) or not rollback_ids:
        raise Invalid({"rollback": ["Select at least one request."]})
    if not all(isinstance(pk, int) and not isinstance(pk, bool) and 0 < pk <= MAX_ID for pk in rollback_ids):
        raise Invalid({"rollback": ["Each selected request must be a rollback number."]})
    ids = list(dict.fromkeys(rollback_ids))
    if len(ids) > MAX_BATCH:
        raise Invalid(
            {"rollback": [f"A batch decision covers at most {MAX_BATCH} requests; {len(ids)} were selected."]}
        )
    return ids


def _as_refusal(error: DomainError) -> Refusal:
    """sign_off raises its rule's Refusal as an error; the batch reports it as the Refusal again."""
    if isinstance(error, Forbidden):
        return Refusal(error.message, 403, "person")
    return Refusal(error.message, 409, "state")


def cancel_rollback(rollback_id: int, *, actor: Any) -> Rollback:
    """The requester or a holder of one of its signing roles calls a rollback off until execution starts."""
    name = actor_name(actor)
    refusal: DomainError | None = None
    with transaction.atomic():
        rollback = lock_rollback(rollback_id)
        try:
            _check_may_cancel(rollback, actor)
        except DomainError as error:
            refusal = error
            record_event(
                "rollback.refused",
                actor=name,
                rollback_id=rollback.pk,
                data={"operation": "cancel", "reason": error.message, "status": error.status_code},
            )
        else:
            move_rollback(rollback, RollbackState.CANCELLED, actor=name, finished_at=timezone.now())
            _release_actions(rollback, actor=name)
    if refusal is not None:
        raise refusal
    return rollback


def _policy() -> tuple[int, Manifest]:
    try:
        return current_policy()
    except NoPolicyLoaded as exc:
        raise Conflict(str(exc)) from None


def _trigger_policy(manifest: Manifest, trigger: Any) -> TriggerPolicy:
    if not isinstance(trigger, str) or not trigger:
        raise Invalid({"trigger": ["This field is required."]})
    policy = manifest.triggers.get(trigger)
    if policy is None:
        known = ", ".join(name for name in Trigger.values if name in manifest.triggers)
        raise Invalid({"trigger": [f"{trigger!r} is not a trigger of the current policy (one of {known})."]})
    return policy


def _plan(
    *,
    requester: Any,
    policy: TriggerPolicy,
    manifest: Manifest,
    version_id: int,
    reason: Any,
    actions: Any,
    selector: Any,
    max_cascade_depth: Any,
    reference: Any,
) -> Plan:
    errors: dict[str, Any] = {}
    if not isinstance(reason, str) or not reason.strip():
        errors["reason"] = ["Say why the actions should be reversed."]
    elif len(reason) > MAX_REASON_LENGTH:
        errors["reason"] = [f"At most {MAX_REASON_LENGTH} characters."]
    if reference is None:
        reference = ""
    if not isinstance(reference, str):
        errors["reference"] = ["Must be text."]
    elif len(reference) > MAX_REFERENCE_LENGTH:
        errors["reference"] = [f"At most {MAX_REFERENCE_LENGTH} characters."]
    elif policy.reference_required and not reference.strip():
        errors["reference"] = [f"A {policy.name} rollback needs a reference (the order's number)."]
    depth = policy.max_cascade_depth
    if max_cascade_depth is not None:
        if not isinstance(max_cascade_depth, int) or isinstance(max_cascade_depth, bool) or max_cascade_depth < 0:
            errors["max_cascade_depth"] = ["Must be a whole number of at least 0."]
        elif max_cascade_depth > policy.max_cascade_depth:
            errors["max_cascade_depth"] = [
                f"A {policy.name} rollback may authorize a cascade depth of at most {policy.max_cascade_depth}."
            ]
        else:
            depth = max_cascade_depth
    if (actions is None) == (selector is None):
        errors["non_field_errors"] = ["Give either `actions` (a list of action ids) or a `selector`, not both."]
        raise Invalid(errors)
    target_ids = _targets(requester, actions, selector, errors)
    if errors:
        raise Invalid(errors)

    walk = walk_cascade(target_ids, manifest)
    now = timezone.now()
    irreversible = window_expired = already_reversed = 0
    claimable: list[int] = []
    targets = set(target_ids)
    target_windows: list[datetime] = []
    for pk, state, reversibility, window_ends_at in _facts(list(walk.nodes)):
        irreversible += reversibility == "irreversible"
        window_expired += window_ends_at is not None and window_ends_at < now
        if window_ends_at is not None and pk in targets:
            target_windows.append(window_ends_at)
        if state in (ActionState.EXECUTED, ActionState.ROLLBACK_PENDING):
            claimable.append(pk)
        # Planned all the same (their steps end `already_reversed` and call nothing); the preview says how many.
        already_reversed += state in ALREADY_REVERSED_STATES
    required = [{"role": s.role, "count": s.count} for s in policy.signoffs]
    if window_expired:
        required = _merge_signoffs(
            required, [{"role": s.role, "count": s.count} for s in manifest.window_expired_signoffs]
        )
    return Plan(
        trigger=policy.name,
        reason=reason.strip(),
        reference=reference.strip() or None,  # none given is null, not an empty string
        policy_version_id=version_id,
        max_cascade_depth=depth,
        selector=dict(selector) if selector is not None else None,
        required_signoffs=required,
        counts={
            "actions": len(target_ids),
            "cascade": len(walk.nodes) - len(target_ids),
            "irreversible": irreversible,
            "window_expired": window_expired,
            "already_reversed": already_reversed,
            "action_ids": target_ids,
        },
        window_closes_at=min(target_windows, default=None),
        walk=walk,
        claimable=claimable,
    )


def _targets(requester: Any, actions: Any, selector: Any, errors: dict[str, Any]) -> list[int]:
    """The target ids, sorted; field errors go into `errors`. Ids the requester may not see are unknown."""
    visible = actions_visible_to(requester)
    if actions is not None:
        if not isinstance(actions, list) or not all(
            isinstance(pk, int) and not isinstance(pk, bool) and 0 < pk <= MAX_ID for pk in actions
        ):
            errors["actions"] = ["Must be a list of action ids."]
            return []
        if not actions:
            errors["actions"] = ["Name at least one action."]
            return []
        wanted = sorted(set(actions))
        found: set[int] = set()
        for chunk in _chunks(wanted):
            found.update(visible.filter(pk__in=chunk).values_list("pk", flat=True))
        unknown = [pk for pk in wanted if pk not in found]
        if unknown:
            errors["actions"] = [f"No action you may see has the id {pk}." for pk in unknown]
            return []
        return wanted
    if not isinstance(selector, Mapping):
        errors["selector"] = ["Must be an object of action filters."]
        return []
    if not selector:
        errors["selector"] = ["Give at least one filter."]
        return []
    try:
        selected = select_actions(requester, selector)
    except Invalid as exc:
        errors["selector"] = exc.errors
        return []
    try:
        target_ids = sorted(selected.order_by().values_list("pk", flat=True))
    except OverflowError:  # SQLite cannot compare with a number past 64 bits; no action can match one
        target_ids = []
    if not target_ids:
        errors["selector"] = ["No action you may see matches these filters."]
    return target_ids


def _facts(action_ids: list[int]) -> Iterable[tuple[int, str, str, Any]]:
    for chunk in _chunks(action_ids):
        yield from (
            Action.objects.filter(pk__in=chunk)
            .values_list("pk", "state", "reversibility", "window_ends_at")
            .iterator(chunk_size=FREEZE_BATCH)
        )


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    if connection.vendor != "sqlite":
        yield ids
        return
    for start in range(0, len(ids), _SQLITE_CHUNK):
        yield ids[start : start + _SQLITE_CHUNK]


def _merge_signoffs(required: list[dict[str, Any]], extras: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge by role, the larger count winning; the trigger's roles keep their order, new ones follow."""
    merged = {item["role"]: dict(item) for item in required}
    for extra in extras:
        if extra["role"] in merged:
            merged[extra["role"]]["count"] = max(merged[extra["role"]]["count"], extra["count"])
        else:
            merged[extra["role"]] = dict(extra)
    return list(merged.values())


def _create_rollback(plan: Plan, requester: Any) -> Rollback:
    """The rollback row and its RequiredSignoff rows, both from the plan's one list of required sign-offs: the
    JSON is what the API and the sign-off rules read, the rows are what the queue asks the database about."""
    rollback = Rollback.objects.create(
        trigger=plan.trigger,
        reason=plan.reason,
        reference=plan.reference,
        requested_by=requester,
        policy_version_id=plan.policy_version_id,
        max_cascade_depth=plan.max_cascade_depth,
        confirmed_depth=plan.max_cascade_depth,
        selector=plan.selector,
        plan=plan.counts,
        required_signoffs=plan.required_signoffs,
        window_closes_at=plan.window_closes_at,
    )
    RequiredSignoff.objects.bulk_create(
        RequiredSignoff(rollback=rollback, role=item["role"], count=item["count"]) for item in plan.required_signoffs
    )
    return rollback


def _freeze_steps(rollback: Rollback, walk: CascadeWalk) -> None:
    """One step per planned action, then one per loop arrival (execution ends it `loop_stopped` when it gets
    there). The walk lists its nodes level by level, so they are inserted in order, FREEZE_BATCH at a time and never
    across a level's end: each step's `via` (the step it was reached from, one level up) is then in the table
    already, found by one query per batch. No list of every step is built, whatever the incident's size."""
    nodes = iter(walk.nodes.values())
    pending: list[CascadeNode] = []
    for node in nodes:
        if pending and (node.depth != pending[0].depth or len(pending) == FREEZE_BATCH):
            _insert_steps(rollback, pending)
            pending = []
        pending.append(node)
    if pending:
        _insert_steps(rollback, pending)
    for start in range(0, len(walk.loops), FREEZE_BATCH):
        loops = walk.loops[start : start + FREEZE_BATCH]
        via = _step_ids(rollback, [loop.from_action for loop in loops])
        Step.objects.bulk_create(
            [
                Step(
                    rollback=rollback,
                    action_id=loop.to_action,
                    depth=loop.depth,
                    via_id=via[loop.from_action],
                    is_loop=True,
                    detail="Loop: the cascade returns to an action already on its path: "
                    + " -> ".join(f"action {pk}" for pk in loop.path)
                    + ".",
                )
                for loop in loops
            ]
        )


def _insert_steps(rollback: Rollback, nodes: list[CascadeNode]) -> None:
    """The steps of one batch of nodes of one level."""
    via = _step_ids(rollback, [node.via for node in nodes if node.via is not None])
    Step.objects.bulk_create(
        [
            Step(
                rollback=rollback,
                action_id=node.action_id,
                depth=node.depth,
                via_id=via[node.via] if node.via is not None else None,
            )
            for node in nodes
        ]
    )


def _step_ids(rollback: Rollback, action_ids: list[int]) -> dict[int, int]:
    """The rollback's (non-loop) step of each of these actions, by action id; no query for none."""
    if not action_ids:
        return {}
    return dict(
        Step.objects.filter(rollback=rollback, is_loop=False, action_id__in=sorted(set(action_ids))).values_list(
            "action_id", "pk"
        )
    )


def _approvals(rollback: Rollback) -> dict[str, int]:
    return dict(
        SignOff.objects.filter(rollback=rollback, decision=SignoffDecision.APPROVE)
        .values_list("role")
        .annotate(given=Count("id"))
        .values_list("role", "given")
    )


def _missing_roles(rollback: Rollback) -> list[str]:
    """The required roles still short of approvals, in the manifest's order."""
    return missing_roles(rollback, _approvals(rollback))


def _role_to_fill(rollback: Rollback, signer: Any) -> str:
    """The role this signer's sign-off fills, or the refusal raised (rollbacks.rules.signing_role decides)."""
    answer = signing_role(
        signer,
        rollback,
        signed=SignOff.objects.filter(rollback=rollback, signer=signer).exists(),
        approvals=_approvals(rollback),
        approved_error=approved_its_error(signer, rollback),
    )
    if isinstance(answer, Refusal):
        raise answer.error()
    return answer


def _check_may_cancel(rollback: Rollback, actor: Any) -> None:
    refusal = cancel_refusal(actor, rollback)
    if refusal is not None:
        raise refusal.error()


def _release_actions(rollback: Rollback, *, actor: str) -> None:
    """Put the rollback's actions back to `executed`, except those another live rollback still includes. The
    actions are locked before the other rollbacks are read, so two releases racing see each other's end."""
    action_ids = list(Step.objects.filter(rollback=rollback, is_loop=False).values_list("action_id", flat=True))
    pending: list[int] = []
    for chunk in _chunks(sorted(action_ids)):
        pending.extend(
            Action.objects.select_for_update()
            .filter(pk__in=chunk, state=ActionState.ROLLBACK_PENDING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    claimed: set[int] = set()
    for chunk in _chunks(pending):
        claimed.update(
            Step.objects.filter(action_id__in=chunk, rollback__state__in=LIVE_STATES)
            .exclude(rollback=rollback)
            .values_list("action_id", flat=True)
        )
    change_action_states(
        {pk: ActionState.EXECUTED for pk in pending if pk not in claimed}, actor=actor, rollback_id=rollback.pk
    )
