"""The only writer of the audit trail."""

import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, canonical_data, event_hash, format_at
from audit.models import AuditChainHead, AuditEvent, AuditLink

SYSTEM = "system"


@dataclass(frozen=True)
class EventSpec:
    kind: str
    actor: str
    action_id: int | None = None
    rollback_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


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
    """Append several events in order: one query for a few on PostgreSQL, three whatever their number otherwise."""
    if not specs:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("Audit events must be written inside the transaction of the change they record.")
    at = timezone.now()
    if connection.vendor == "postgresql" and len(specs) <= _APPEND_FUNCTION_MAX:
        return _append_in_one_round_trip(specs, at)
    head = AuditChainHead.objects.select_for_update().get(pk=1)
    events = _chain(specs, at, head.seq, head.hash)
    _insert(events)
    AuditChainHead.objects.filter(pk=1).update(seq=events[-1].seq, hash=events[-1].hash)
    return events


# Up to this many events an append is one call of audit_append (migration 0004): lock, hash, insert and move the
# head in the database. Larger batches keep lock + COPY + update: psycopg escapes the text arrays in Python and
# the function hashes in PL/pgSQL, which made 100 events take 7 ms against the COPY's 3.3 (20: 2.0 against 1.9).
_APPEND_FUNCTION_MAX = 20
_APPEND = (
    "SELECT old_seq, old_hash, new_hash FROM audit_append(%s::timestamptz, %s::text, %s::text[], %s::text[], "
    "%s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::text[])"
)


def _append_in_one_round_trip(specs: Sequence[EventSpec], at: datetime) -> list[AuditEvent]:
    datas = [canonical_data(spec.data) for spec in specs]
    params = (
        at,
        format_at(at),
        [spec.actor for spec in specs],
        [orjson.dumps(spec.actor).decode() for spec in specs],
        [spec.kind for spec in specs],
        [orjson.dumps(spec.kind).decode() for spec in specs],
        [spec.action_id for spec in specs],
        [spec.rollback_id for spec in specs],
        datas,
    )
    with connection.cursor() as cursor:
        cursor.execute(_APPEND, params)
        old_seq, old_hash, new_hash = cursor.fetchone()
    # The same chain in Python: the events to return, and a check that both sides hash the same bytes.
    events = _chain(specs, at, old_seq, old_hash, datas)
    if events[-1].hash != new_hash:
        raise RuntimeError("audit_append hashed an event differently from audit.chain; nothing is recorded.")
    return events


def _chain(
    specs: Sequence[EventSpec], at: datetime, seq: int, prev_hash: str, datas: Sequence[str] | None = None
) -> list[AuditEvent]:
    at_text = format_at(at)
    events = []
    for index, spec in enumerate(specs):
        seq += 1
        data = datas[index] if datas is not None else canonical_data(spec.data)
        digest = event_hash(seq, at_text, spec.actor, spec.kind, spec.action_id, spec.rollback_id, data, prev_hash)
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
    return events


_COLUMNS = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "data", "prev_hash", "hash")
_COPY = f"COPY {AuditEvent._meta.db_table} ({', '.join(_COLUMNS)}) FROM STDIN"


def _insert(events: list[AuditEvent]) -> None:
    """One statement whatever the number of events. On PostgreSQL a COPY: a bulk INSERT would send each column as
    an array literal that psycopg escapes in Python, which costs more than hashing the events did."""
    if connection.vendor != "postgresql" or len(events) == 1:
        AuditEvent.objects.bulk_create(events, batch_size=1000)
        return
    with connection.cursor() as cursor:
        # Through Django's cursor, so the COPY is counted where queries are counted (tests, debug).
        logged = cursor.debug_sql(_COPY) if hasattr(cursor, "debug_sql") else nullcontext()
        with logged, cursor.cursor.copy(_COPY) as copy:
            for event in events:
                copy.write_row([getattr(event, column) for column in _COLUMNS])


def link_rollback(rollback_id: int, action_ids: Iterable[int]) -> None:
    """Record that a rollback covers these actions, so either end finds the other's events."""
    links = [AuditLink(rollback_id=rollback_id, action_id=action_id) for action_id in set(action_ids)]
    AuditLink.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)


@transaction.atomic
def record_standalone_event(kind: str, *, actor: str, data: Mapping[str, Any] | None = None) -> AuditEvent:
    """For events that are not part of another change: a refused login, a refused permission."""
    return record_event(kind, actor=actor, data=data)


def anchor_audit_head(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append the chain head as a JSON line `{"seq", "hash", "at"}` to a file outside the database (by default
    settings.AUDIT_ANCHOR_PATH): a superuser who rewrites and rehashes the trail, or deletes its newest events,
    cannot change what was already written there, and `verify_audit --anchor` holds the chain against it."""
    seq, digest = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, GENESIS_HASH)
    anchor = {"seq": seq, "hash": digest, "at": timezone.now().isoformat()}
    target = Path(path or settings.AUDIT_ANCHOR_PATH)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One write of one short line to a file opened for appending: beat and the command never interleave.
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, orjson.dumps(anchor) + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return anchor
