"""The only writer of the audit trail."""

import hashlib
import hmac
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from audit.chain import GENESIS_HASH, canonical_data, event_hash, format_at
from audit.models import AnchorDelivery, AuditChainHead, AuditCheckpoint, AuditEvent, AuditLink

SYSTEM = "system"

logger = logging.getLogger(__name__)


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


# Links inserted per statement: a 100,000-action incident is linked in batches, never as one list of rows.
LINK_BATCH = 2000


def link_rollback(rollback_id: int, action_ids: Iterable[int]) -> None:
    """Record that a rollback covers these actions, so either end finds the other's events. The ids are read as
    they come (an iterator is never made a list) and inserted LINK_BATCH at a time; a repeat is ignored."""
    ids = iter(action_ids)
    while batch := sorted(set(islice(ids, LINK_BATCH))):
        AuditLink.objects.bulk_create(
            [AuditLink(rollback_id=rollback_id, action_id=action_id) for action_id in batch], ignore_conflicts=True
        )


@transaction.atomic
def record_standalone_event(kind: str, *, actor: str, data: Mapping[str, Any] | None = None) -> AuditEvent:
    """For events that are not part of another change: a refused login, a refused permission."""
    return record_event(kind, actor=actor, data=data)


def anchor_audit_head(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Append the chain head as a JSON line `{"seq", "hash", "at"}` to a file outside the database (by default
    settings.AUDIT_ANCHOR_PATH): a superuser who rewrites and rehashes the trail, or deletes its newest events,
    cannot change what was already written there, and `verify_audit --anchor` holds the chain against it.
    With `AUDIT_ANCHOR_URL` set the same line is also queued for the receiver there (`deliver_anchors`)."""
    seq, digest = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, GENESIS_HASH)
    anchor: dict[str, Any] = {"seq": seq, "hash": digest, "at": timezone.now().isoformat()}
    write_anchor(anchor, path)
    return anchor


def write_anchor(anchor: Mapping[str, Any], path: str | os.PathLike[str] | None = None) -> bytes:
    """Append one anchor line to the anchor file and queue it for the anchor receiver; returns the line."""
    line = orjson.dumps(anchor)
    target = Path(path or settings.AUDIT_ANCHOR_PATH)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One write of one short line to a file opened for appending: beat and the command never interleave.
    descriptor = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if settings.AUDIT_ANCHOR_URL:
        AnchorDelivery.objects.create(seq=anchor["seq"], hash=anchor["hash"], line=line.decode())
    return line


def anchor_signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """`X-Rollback-Signature` as the contract's webhooks carry it: `t=UNIX,v1=HMAC-SHA256(secret, "{t}.{body}")`.
    Written here too because audit imports no other app of ours; tests hold it against the webhooks' verifier."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def deliver_anchors() -> int:
    """Post the pending anchor lines to `AUDIT_ANCHOR_URL` in the order they were written; returns how many the
    receiver accepted (2xx). The first refusal stops the round, so anchors arrive in order; what is left waits
    for the next round (every minute by beat, and after each anchor). Each line carries
    `Idempotency-Key: anchor-{seq}-{hash}`, so a receiver that did take a line whose answer was lost can tell."""
    url, secret = settings.AUDIT_ANCHOR_URL, settings.AUDIT_ANCHOR_SECRET
    if not url:
        return 0
    delivered = 0
    with transaction.atomic():
        # skip_locked: a second round running meanwhile (beat and the command) leaves these to this one.
        pending = AnchorDelivery.objects.select_for_update(skip_locked=True).filter(delivered_at=None).order_by("id")
        for delivery in pending:
            delivery.attempts += 1
            error = "AUDIT_ANCHOR_SECRET is not set: anchors are not posted unsigned" if not secret else ""
            if not error:
                error = _post_anchor(url, secret, delivery)
            if error:
                delivery.last_error = error[:1000]
                delivery.save(update_fields=["attempts", "last_error"])
                logger.warning("anchor %s not delivered to %s: %s", delivery.seq, url, error)
                break
            delivery.delivered_at, delivery.last_error = timezone.now(), ""
            delivery.save(update_fields=["attempts", "delivered_at", "last_error"])
            delivered += 1
    return delivered


def _post_anchor(url: str, secret: str, delivery: AnchorDelivery) -> str:
    """Post one anchor line; the error as text, or "" when the receiver took it."""
    body = delivery.line.encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Idempotency-Key": f"anchor-{delivery.seq}-{delivery.hash}",
            "X-Rollback-Signature": anchor_signature(secret, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as refusal:
        status = refusal.code
    except (OSError, ValueError) as failure:  # refused, timed out, unreachable, a bad URL
        return f"no answer: {failure}"
    return "" if 200 <= status < 300 else f"answered {status}"


def record_checkpoint(seq: int, digest: str, *, full: bool) -> AuditCheckpoint | None:
    """Remember that the trail up to `seq` (ending in `digest`) was verified, and write it out as an anchor. A
    checkpoint that could not be anchored is not kept (a verification run where the anchor file is not writable
    still gives its verdict; the next one starts from the previous checkpoint)."""
    try:
        write_anchor({"seq": seq, "hash": digest, "at": timezone.now().isoformat(), "checkpoint": True})
    except OSError as error:
        logger.warning("checkpoint at seq %s not kept: its anchor could not be written: %s", seq, error)
        return None
    return AuditCheckpoint.objects.create(seq=seq, hash=digest, full=full)
