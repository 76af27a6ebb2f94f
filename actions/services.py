"""Every write to actions: recording them (one or a batch), linking them, and moving their state.

Recording costs a constant number of queries whatever the batch size or the number of `caused_by` links: one
for the current policy version, the approvers and the integrator's existing actions (replays and causes) at once,
one insert per table and the audit append (one call on PostgreSQL for a small batch); one more to show replays.
"""

import functools
import math
import re
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.contrib.auth import get_user_model
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from actions.intake import (
    ActionInput,
    FieldErrors,
    clean_action_fields,
    clean_external_ids,
    json_pointer,
    payload_schema_errors,
)
from actions.models import ACTION_TRANSITIONS, Action, ActionLink
from audit.services import EventSpec, record_events
from policies.manifest import ActionTypePolicy, Manifest
from policies.models import PolicyActivation
from policies.selectors import NO_POLICY, policy_version_manifest
from rollback_console.errors import Conflict, Invalid

User = get_user_model()

# A concurrent request recording the same external id (or a deadlock between two batches) aborts the whole
# transaction; running it again sees the other's committed rows and answers as a replay or a conflict.
_ATTEMPTS = 3
_RETRYABLE_SQLSTATES = {"40001", "40P01"}
# Every name a batch mentions goes into one lookup query: this keeps it within SQLite's parameter limit.
MAX_BATCH_LINKS = 10_000
_AMOUNT_QUANTUM = Decimal("0.0001")
_AMOUNT_LIMIT = Decimal(10) ** 14  # Action.amount: 18 digits, 4 after the point
_DECIMAL_TEXT = re.compile(r"[0-9]+(\.[0-9]+)?")


def record_action(integrator: Any, data: Any) -> tuple[Action, bool]:
    """Record one action for `integrator`: (action, True), or (the recorded action, False) when the same body
    was recorded before. Raises Invalid (400, field errors) or Conflict (409: the external id was recorded
    with a different body; nothing changes)."""
    errors: FieldErrors = {}
    item = clean_action_fields(data, errors)
    if item is None:
        raise Invalid(errors)
    ((action, created),) = _record(integrator, [item], batch=False)
    return action, created


def record_actions(integrator: Any, items: Any) -> list[tuple[Action, bool]]:
    """Record a batch in order, all or none: a later item may name an earlier one in `caused_by`. Errors are
    keyed by the failing item's index: {"actions": {"3": {"approved_by": [...]}}}."""
    if items is None or isinstance(items, str | bytes | Mapping) or not isinstance(items, Sequence):
        raise Invalid({"actions": ["Expected a list of actions."]})
    if not items:
        raise Invalid({"actions": ["Send at least one action."]})
    errors: dict[str, FieldErrors] = {}
    cleaned: list[ActionInput] = []
    for index, data in enumerate(items):
        item_errors: FieldErrors = {}
        item = clean_action_fields(data, item_errors)
        if item is None:
            errors[str(index)] = item_errors
        else:
            cleaned.append(item)
    if errors:
        raise Invalid({"actions": errors})
    if sum(len(item.caused_by) for item in cleaned) > MAX_BATCH_LINKS:
        raise Invalid(
            {
                "actions": [
                    f"At most {MAX_BATCH_LINKS:,} caused_by links in one batch: send the rest in another batch or "
                    "with POST /api/v1/actions/{id}/links/."
                ]
            }
        )
    return _record(integrator, cleaned, batch=True)


def _record(integrator: Any, items: list[ActionInput], *, batch: bool) -> list[tuple[Action, bool]]:
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _record_once(integrator, items, batch=batch)
        except IntegrityError:
            if attempt == _ATTEMPTS:
                raise Conflict("Another request recorded the same external id at the same time; retry.") from None
        except OperationalError as exc:
            if attempt == _ATTEMPTS or getattr(exc.__cause__, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                raise
    raise AssertionError("unreachable")


def _look_up(
    integrator: Any, items: list[ActionInput]
) -> tuple[tuple[int, str] | None, dict[str, tuple[int, str]], dict[str, Any]]:
    """In one query: the current policy version (id, content hash), the integrator's recorded actions that the
    items name (as themselves, to replay, or as causes), as {external id: (id, fingerprint)}, and the approvers,
    as {username: user}. A single post's cost is mostly its number of queries, and then building them: the ORM took
    about 1.5 ms to compile this union on every post, so it is written once as SQL (the same on both databases)."""
    referenced = sorted({item.external_id for item in items}.union(*(item.caused_by for item in items)))
    approvers = sorted({item.approved_by for item in items})
    policy: tuple[int, str] | None = None
    recorded: dict[str, tuple[int, str]] = {}
    users: dict[str, Any] = {}
    with connection.cursor() as cursor:
        cursor.execute(_look_up_sql(len(referenced), len(approvers)), [integrator.pk, *referenced, *approvers])
        for kind, name, pk, fingerprint in cursor.fetchall():
            if kind == "action":
                recorded[name] = (pk, fingerprint)
            elif kind == "user":
                users[name] = User.from_db(None, ["id", "username"], [pk, name])
            else:
                policy = (pk, name)
    return policy, recorded, users


@functools.lru_cache(maxsize=256)  # one string per (actions, approvers) size seen
def _look_up_sql(actions: int, approvers: int) -> str:
    # The newest activation is the one no later activation follows (SQLite allows no ORDER BY or LIMIT in a UNION).
    activation, version = PolicyActivation._meta.db_table, PolicyActivation.version.field.related_model._meta.db_table
    return (
        f"SELECT 'policy', v.content_hash, a.version_id, '' FROM {activation} a JOIN {version} v ON v.id = a.version_id"
        f" WHERE NOT EXISTS (SELECT 1 FROM {activation} later WHERE later.id > a.id)"
        f" UNION ALL SELECT 'action', external_id, id, fingerprint FROM {Action._meta.db_table}"
        f" WHERE integrator_id = %s AND external_id IN ({', '.join(['%s'] * actions)})"
        f" UNION ALL SELECT 'user', username, id, '' FROM {User._meta.db_table}"
        f" WHERE username IN ({', '.join(['%s'] * approvers)})"
    )


@dataclass
class _Sorted:
    """The items of one call sorted: what refuses it, what replays an earlier record, and the actions to insert."""

    errors: dict[str, FieldErrors] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    replays: dict[int, int] = field(default_factory=dict)  # index -> id of the action recorded before, same body
    new_actions: dict[int, Action] = field(default_factory=dict)  # index -> action to insert
    new_items: list[ActionInput] = field(default_factory=list)
    earlier: dict[str, Action] = field(default_factory=dict)  # external id -> action, new in this batch


def _record_once(integrator: Any, items: list[ActionInput], *, batch: bool) -> list[tuple[Action, bool]]:
    policy_version, recorded, approvers = _look_up(integrator, items)
    if policy_version is None:
        raise Conflict(NO_POLICY)
    manifest = policy_version_manifest(*policy_version)
    sorted_items = _sort_items(integrator, items, recorded, approvers, manifest, policy_version[0], batch=batch)
    if sorted_items.errors:
        raise Invalid({"actions": sorted_items.errors} if batch else sorted_items.errors["0"])
    if sorted_items.conflicts:
        raise Conflict(" ".join(sorted_items.conflicts))
    if sorted_items.new_actions:
        _save_new_actions(integrator, sorted_items, recorded, manifest)
    replayed = _replayed_actions(integrator, sorted_items.replays)
    return [
        (sorted_items.new_actions[index], True)
        if index in sorted_items.new_actions
        else (replayed[sorted_items.replays[index]], False)
        for index in range(len(items))
    ]


def _sort_items(
    integrator: Any,
    items: list[ActionInput],
    recorded: dict[str, tuple[int, str]],
    approvers: dict[str, Any],
    manifest: Manifest,
    version_id: int,
    *,
    batch: bool,
) -> _Sorted:
    sorted_items = _Sorted()
    seen: dict[str, int] = {}  # external id -> index, earlier in this batch
    for index, item in enumerate(items):
        item_errors: FieldErrors = {}
        if item.external_id in seen:
            item_errors["external_id"] = [f"Repeats the external id of actions[{seen[item.external_id]}]."]
        seen.setdefault(item.external_id, index)
        if item.external_id in recorded and not item_errors:
            pk, fingerprint = recorded[item.external_id]
            if fingerprint == item.fingerprint:
                sorted_items.replays[index] = pk
            else:
                label = f"actions[{index}]" if batch else "the action"
                sorted_items.conflicts.append(
                    f"{label}: external id {item.external_id!r} was recorded (action {pk}) with a different body; "
                    "nothing was changed."
                )
            continue
        action = _new_action(
            integrator, item, item_errors, recorded, approvers, sorted_items.earlier, manifest, version_id, batch=batch
        )
        if action is None:
            sorted_items.errors[str(index)] = item_errors
            continue
        sorted_items.earlier[item.external_id] = action
        sorted_items.new_actions[index] = action
        sorted_items.new_items.append(item)
    return sorted_items


def _new_action(
    integrator: Any,
    item: ActionInput,
    item_errors: FieldErrors,
    recorded: dict[str, tuple[int, str]],
    approvers: dict[str, Any],
    earlier: dict[str, Action],
    manifest: Manifest,
    version_id: int,
    *,
    batch: bool,
) -> Action | None:
    """The action an item records, or None with what is wrong with it in `item_errors`."""
    policy = manifest.action_type(item.action_type)
    if policy is None:
        item_errors["action_type"] = [
            f"{item.action_type!r} is not an action type of the current policy ({manifest.version})."
        ]
    approver = approvers.get(item.approved_by)
    if approver is None:
        item_errors["approved_by"] = [f"No user is named {item.approved_by!r}."]
    missing = [name for name in item.caused_by if name not in recorded and name not in earlier]
    if missing:
        item_errors["caused_by"] = [
            "Not recorded by this integrator"
            + (" (or not earlier in this batch)" if batch else "")
            + ": "
            + ", ".join(repr(name) for name in missing)
            + "."
        ]
    snapshot: dict[str, Any] = {}
    if policy is not None:
        if policy.payload_validator is not None:
            payload_schema_errors(policy.payload_validator, item.payload, item_errors, policy.payload_fast_check)
        snapshot = _reversibility(policy, item, item_errors)
    if item_errors:
        return None
    return Action(
        integrator=integrator,
        external_id=item.external_id,
        action_type=item.action_type,
        subject=item.subject,
        payload=item.payload,
        executed_at=item.executed_at,
        approved_by=approver,
        approved_at=item.approved_at,
        approval_context=item.approval_context,
        policy_version_id=version_id,
        fingerprint=item.fingerprint,
        **snapshot,
    )


def _save_new_actions(
    integrator: Any, sorted_items: _Sorted, recorded: dict[str, tuple[int, str]], manifest: Manifest
) -> None:
    """Insert the new actions, their links to their causes and their `action.recorded` events."""
    new_actions, earlier = sorted_items.new_actions, sorted_items.earlier
    _insert_actions(list(new_actions.values()))

    def id_of(name: str) -> int:
        return recorded[name][0] if name in recorded else earlier[name].pk

    links = [
        ActionLink(upstream_id=id_of(name), downstream_id=action.pk)
        for action, item in zip(new_actions.values(), sorted_items.new_items, strict=True)
        for name in item.caused_by
    ]
    if links:
        ActionLink.objects.bulk_create(links)
    record_events(
        [
            _recorded_event(integrator, action, item, {name: id_of(name) for name in item.caused_by}, manifest)
            for action, item in zip(new_actions.values(), sorted_items.new_items, strict=True)
        ]
    )


def _replayed_actions(integrator: Any, replays: dict[int, int]) -> dict[int, Action]:
    if not replays:
        return {}
    replayed = Action.objects.select_related("approved_by").in_bulk(list(replays.values()))
    for action in replayed.values():
        action.integrator = integrator  # the same user: spares a query when the replay is shown
    return replayed


_COPY_FROM = 21  # actions in one batch from which PostgreSQL gets them by COPY
_COLUMNS = (
    "id",
    "integrator_id",
    "external_id",
    "action_type",
    "subject",
    "payload",
    "executed_at",
    "approved_by_id",
    "approved_at",
    "approval_context",
    "policy_version_id",
    "reversibility",
    "reversal_method",
    "prerequisites",
    "side_effects",
    "window_ends_at",
    "amount",
    "state",
    "fingerprint",
    "recorded_at",
)
_JSON_COLUMNS = frozenset({"payload", "approval_context", "prerequisites", "side_effects"})
_TABLE = Action._meta.db_table
_COPY = f"COPY {_TABLE} ({', '.join(_COLUMNS)}) FROM STDIN"


def _insert_actions(actions: list[Action]) -> None:
    """One bulk insert; on PostgreSQL a larger batch takes its ids from the sequence and goes in by COPY, whose
    rows psycopg formats in C, where Django's UNNEST insert has psycopg escape every JSON text array in Python
    (about half the batch's time in the web process)."""
    if connection.vendor != "postgresql" or len(actions) < _COPY_FROM:
        Action.objects.bulk_create(actions)
        return
    recorded_at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{_TABLE}', 'id')) FROM generate_series(1, %s)", [len(actions)]
        )
        ids = sorted(pk for (pk,) in cursor.fetchall())
        for pk, action in zip(ids, actions, strict=True):
            action.pk = pk
            action.recorded_at = recorded_at
            action._state.adding = False
            action._state.db = cursor.db.alias
        # Through Django's cursor, so the COPY is counted where queries are counted (tests, debug), and with its
        # error wrapper, so a concurrent insert of the same external id is the IntegrityError _record retries on.
        logged = cursor.debug_sql(_COPY) if hasattr(cursor, "debug_sql") else nullcontext()
        with logged, connection.wrap_database_errors, cursor.cursor.copy(_COPY) as copy:
            for action in actions:
                copy.write_row(
                    [
                        orjson.dumps(getattr(action, column)).decode()
                        if column in _JSON_COLUMNS
                        else getattr(action, column)
                        for column in _COLUMNS
                    ]
                )


def _reversibility(policy: ActionTypePolicy, item: ActionInput, errors: FieldErrors) -> dict[str, Any]:
    """The policy's promise about this action, frozen on it: a later policy cannot rewrite it."""
    window_ends_at: datetime | None = None
    if policy.window is not None:
        try:
            window_ends_at = item.executed_at + policy.window
        except OverflowError:
            errors["executed_at"] = [f"Too far in the future for a reversal window of {policy.window_text}."]
    return {
        "reversibility": policy.reversibility,
        "reversal_method": policy.method or "",
        "prerequisites": list(policy.prerequisites),
        "side_effects": list(policy.side_effects),
        "window_ends_at": window_ends_at,
        "amount": _amount(policy, item.payload, errors),
    }


def _amount(policy: ActionTypePolicy, payload: Mapping[str, Any], errors: FieldErrors) -> Decimal | None:
    """The financial impact, from the policy's amount field: required, and a non-negative decimal, because the
    sign-offs and the metrics weigh a rollback by it."""
    if not policy.amount_field:
        return None
    pointer = json_pointer("payload", policy.amount_field)
    if policy.amount_field not in payload:
        errors[pointer] = [f"This field is required: {policy.name} reads its amount from it."]
        return None
    value = payload[policy.amount_field]
    amount: Decimal | None = None
    if (isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value)) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        amount = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        amount = Decimal(str(value))
    if amount is None or amount < 0:
        errors[pointer] = ['Expected a non-negative decimal, as a string such as "12.50" or as a number.']
        return None
    if amount >= _AMOUNT_LIMIT:
        errors[pointer] = ["Too large for an amount (at most 14 digits before the point)."]
        return None
    return amount.quantize(_AMOUNT_QUANTUM)


def _recorded_event(
    integrator: Any, action: Action, item: ActionInput, causes: Mapping[str, int], manifest: Manifest
) -> EventSpec:
    return EventSpec(
        kind="action.recorded",
        actor=integrator.get_username(),
        action_id=action.pk,
        data={
            "external_id": item.external_id,
            "action_type": item.action_type,
            "subject": item.subject,
            "payload": item.payload,
            "executed_at": item.executed_at.isoformat(),
            "approval": {
                "approved_by": item.approved_by,
                "approved_by_id": action.approved_by_id,
                "approved_at": item.approved_at.isoformat(),
                "context": item.approval_context,
            },
            "policy_version": {"id": action.policy_version_id, "label": manifest.version},
            # The rest of the snapshot (method, prerequisites, side effects) follows from the policy version and
            # the action type; repeating their text in every event would only slow the batch down.
            "reversibility": {
                "class": action.reversibility,
                "window_ends_at": action.window_ends_at.isoformat() if action.window_ends_at else None,
                "amount": action.amount,
            },
            # Links known at recording are part of the recording; later ones get `action.linked`.
            "caused_by": [{"id": causes[name], "external_id": name} for name in item.caused_by],
            "fingerprint": item.fingerprint,
        },
    )


def add_links(action: Action, causes: Any, *, actor: str) -> Action:
    """Record that `action` caused these actions (external ids of the same integrator), learned after the fact.
    Links may close a cycle; a link that exists already is no error and is not recorded twice."""
    names = clean_external_ids("causes", causes)
    if not names:
        raise Invalid({"causes": ["Name at least one action."]})
    if action.external_id in names:
        raise Invalid({"causes": ["An action cannot cause itself."]})
    with transaction.atomic():
        downstream = {
            name: pk
            for name, pk in Action.objects.filter(
                integrator_id=action.integrator_id, external_id__in=names
            ).values_list("external_id", "pk")
        }
        missing = [name for name in names if name not in downstream]
        if missing:
            raise Invalid({"causes": ["Not recorded by this integrator: " + ", ".join(map(repr, missing)) + "."]})
        linked = set(
            ActionLink.objects.filter(upstream_id=action.pk, downstream_id__in=downstream.values()).values_list(
                "downstream_id", flat=True
            )
        )
        added = [name for name in names if downstream[name] not in linked]
        if added:
            ActionLink.objects.bulk_create(
                [ActionLink(upstream_id=action.pk, downstream_id=downstream[name]) for name in added],
                ignore_conflicts=True,  # a concurrent request adding the same link is no error either
            )
            record_events(
                [
                    EventSpec(
                        kind="action.linked",
                        actor=actor,
                        action_id=action.pk,
                        data={
                            "external_id": action.external_id,
                            "causes": [{"id": downstream[name], "external_id": name} for name in added],
                        },
                    )
                ]
            )
    return action


def change_action_states(changes: Mapping[int, str], *, actor: str, rollback_id: int | None) -> None:
    """Move many actions' states at once (the rollback workers call this as steps finish). Locks the rows,
    checks ACTION_TRANSITIONS, and audits one `action.state_changed` per action that moves; an action already
    in its target state is left alone. Raises Conflict naming every forbidden move, changing nothing."""
    if not changes:
        return
    with transaction.atomic():
        current = dict(
            Action.objects.select_for_update().filter(pk__in=list(changes)).order_by("pk").values_list("pk", "state")
        )
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise Invalid({"actions": [f"No action has the id {pk}." for pk in unknown]})
        forbidden = [
            f"action {pk}: {current[pk]} -> {to_state}"
            for pk, to_state in sorted(changes.items())
            if current[pk] != to_state and to_state not in ACTION_TRANSITIONS.get(current[pk], frozenset())
        ]
        if forbidden:
            raise Conflict("Forbidden action state changes: " + "; ".join(forbidden) + ".")
        moves: dict[str, list[int]] = {}
        for pk, to_state in sorted(changes.items()):
            if current[pk] != to_state:
                moves.setdefault(to_state, []).append(pk)
        for to_state, pks in moves.items():
            Action.objects.filter(pk__in=pks).update(state=to_state)
        record_events(
            [
                EventSpec(
                    kind="action.state_changed",
                    actor=actor,
                    action_id=pk,
                    rollback_id=rollback_id,
                    data={"from": current[pk], "to": to_state},
                )
                for to_state, pks in moves.items()
                for pk in pks
            ]
        )
