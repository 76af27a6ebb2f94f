"""The only writer of the audit trail."""

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent, AuditLink

GENESIS_HASH = "0" * 64
SYSTEM = "system"


@dataclass(frozen=True)
class EventSpec:
    kind: str
    actor: str
    action_id: int | None = None
    rollback_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_data(data: Mapping[str, Any]) -> str:
    return orjson.dumps(data, default=_default, option=orjson.OPT_SORT_KEYS).decode()


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    seq: int,
    at: str,
    actor: str,
    kind: str,
    action_id: int | None,
    rollback_id: int | None,
    data: str,
    prev_hash: str,
) -> str:
    """SHA-256 over the event's canonical bytes. The verifier and the JSON Lines export rebuild exactly this."""
    body = orjson.dumps(
        {
            "action": action_id,
            "actor": actor,
            "at": at,
            "data": orjson.Fragment(data),
            "kind": kind,
            "prev_hash": prev_hash,
            "rollback": rollback_id,
            "seq": seq,
        },
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()


def actor_name(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return str(user.get_username())


def record_event(
    kind: str,
    *,
    actor: str,
    action_id: int | None = None,
    rollback_id: int | None = None,
    data: Mapping[str, Any] | None = None,
    links: Iterable[int] = (),
) -> AuditEvent:
    """Append one event. Call it inside the transaction of the change it records."""
    spec = EventSpec(kind=kind, actor=actor, action_id=action_id, rollback_id=rollback_id, data=data or {})
    event = record_events([spec])[0]
    if rollback_id is not None:
        link_rollback(rollback_id, links)
    return event


def record_events(specs: Sequence[EventSpec]) -> list[AuditEvent]:
    """Append several events in order with three queries whatever their number."""
    if not specs:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("Audit events must be written inside the transaction of the change they record.")
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    seq, prev_hash = head.seq, head.hash
    at = timezone.now()
    at_text = format_at(at)
    events = []
    for spec in specs:
        seq += 1
        data = canonical_data(spec.data)
        digest = event_hash(
            seq=seq,
            at=at_text,
            actor=spec.actor,
            kind=spec.kind,
            action_id=spec.action_id,
            rollback_id=spec.rollback_id,
            data=data,
            prev_hash=prev_hash,
        )
        events.append(
            AuditEvent(
                seq=seq,
                at=at,
                actor=spec.actor,
                kind=spec.kind,
                action_id=spec.action_id,
                rollback_id=spec.rollback_id,
                data=data,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        prev_hash = digest
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=prev_hash)
    return events


def link_rollback(rollback_id: int, action_ids: Iterable[int]) -> None:
    """Record that a rollback covers these actions, so either end finds the other's events."""
    links = [AuditLink(rollback_id=rollback_id, action_id=action_id) for action_id in set(action_ids)]
    AuditLink.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)


@transaction.atomic
def record_standalone_event(kind: str, *, actor: str, data: Mapping[str, Any] | None = None) -> AuditEvent:
    """For events that are not part of another change: a refused login, a refused permission."""
    return record_event(kind, actor=actor, data=data)
