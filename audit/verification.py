"""Recomputes the audit chain stored in the database and holds it against the head row and the anchors.

On PostgreSQL the rows are read with COPY as text (the data column already holds the canonical JSON, so nothing is
parsed), inside one REPEATABLE READ snapshot; a long trail is split by seq over several processes that import the
same snapshot, so they see exactly the rows the head row was read with.
"""

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import get_context

from django.db import connection, transaction

from audit.chain import (
    ANCHOR,
    ANCHOR_CONFLICT,
    CHECKPOINT,
    GENESIS_HASH,
    Row,
    Scan,
    Verdict,
    event_hash,
    format_at,
    join_scans,
    row_of,
    scan_postgres_in,
    scan_postgres_range,
    scan_rows,
)
from audit.models import AuditChainHead, AuditCheckpoint, AuditEvent
from audit.services import record_checkpoint

# Below this many events a second process costs more to start than it saves.
PARALLEL_FROM = 150_000


def verify_chain(
    *,
    anchors: Mapping[int, str] | None = None,
    processes: int | None = None,
    anchor_conflicts: Iterable[int] = (),
) -> Verdict:
    """Recompute every event's hash in seq order and report the first seq that breaks.

    `processes` caps the processes used on PostgreSQL (default: one per core, at most 4). `anchor_conflicts` are
    seqs for which the anchors disagree (`merge_anchors`): the first is a break of its own."""
    anchors = dict(anchors or {})
    if connection.vendor == "postgresql":
        if processes is None:
            processes = min(os.cpu_count() or 1, 4)
        verdict = _verify_postgres(anchors, processes)
    else:
        verdict = _verify_with_orm(anchors)
    conflicts = sorted(anchor_conflicts)
    if conflicts and (verdict.broken_seq is None or conflicts[0] <= verdict.broken_seq):
        events = verdict.events if not verdict.ok else AuditEvent.objects.count()
        verdict = Verdict(ok=False, events=events, broken_seq=conflicts[0], reason=ANCHOR_CONFLICT)
    return verdict


@contextmanager
def trail_snapshot() -> Iterator[bool]:
    """One consistent view of the trail and its head for the block. Yields whether the block runs in a
    transaction of its own: inside a caller's (a test's, say) that snapshot is the one to read."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if own_transaction and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield own_transaction


def chain_head() -> tuple[int, str]:
    head = AuditChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    return head or (0, GENESIS_HASH)


def _verify_postgres(anchors: dict[int, str], processes: int) -> Verdict:
    with trail_snapshot() as own_transaction, connection.cursor() as cursor:
        head_seq, head_hash = chain_head()
        cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_auditevent")
        (top,) = cursor.fetchone()
        conn = connection.connection
        # Other processes cannot see a caller's uncommitted rows: they only help in a transaction of our own.
        if own_transaction and processes > 1 and top >= PARALLEL_FROM:
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
            bounds = [top * part // processes for part in range(processes + 1)]
            with ProcessPoolExecutor(processes - 1, mp_context=get_context("spawn")) as pool:
                others = [
                    pool.submit(scan_postgres_range, _conninfo(), snapshot, bounds[part], bounds[part + 1], anchors)
                    for part in range(1, processes)
                ]
                scans = [scan_postgres_in(conn, bounds[0], bounds[1], anchors)]
                scans += [future.result() for future in others]
        else:
            scans = [scan_postgres_in(conn, 0, top, anchors)]
        verdict = join_scans(scans, head_seq=head_seq, head_hash=head_hash, anchors=anchors)
        if not verdict.ok:
            cursor.execute("SELECT count(*) FROM audit_auditevent")
            (events,) = cursor.fetchone()
            verdict = dataclasses.replace(verdict, events=events)
    return verdict


def _conninfo() -> str:
    """How the worker processes reach the same database: the libpq parameters of Django's own connection."""
    # Imported only on PostgreSQL, the one database the verification splits over processes.
    from psycopg import pq
    from psycopg.conninfo import make_conninfo

    libpq_keywords = {option.keyword.decode() for option in pq.Conninfo.get_defaults()}
    params = connection.get_connection_params()
    return make_conninfo(
        **{key: str(value) for key, value in params.items() if key in libpq_keywords and value not in (None, "")}
    )


def _verify_with_orm(anchors: dict[int, str]) -> Verdict:
    with trail_snapshot():
        head_seq, head_hash = chain_head()
        scan: Scan = scan_rows(orm_rows(), anchors)
        verdict = join_scans([scan], head_seq=head_seq, head_hash=head_hash, anchors=anchors)
        if not verdict.ok:
            verdict = dataclasses.replace(verdict, events=AuditEvent.objects.count())
    return verdict


def orm_rows(after_seq: int = 0, up_to_seq: int | None = None) -> Iterator[Row]:
    columns = ("seq", "at", "actor", "kind", "action_id", "rollback_id", "data", "prev_hash", "hash")
    events = AuditEvent.objects.filter(seq__gt=after_seq).order_by("seq")
    if up_to_seq is not None:
        events = events.filter(seq__lte=up_to_seq)
    for seq, at, actor, kind, action_id, rollback_id, data, prev_hash, stored_hash in events.values_list(
        *columns
    ).iterator(chunk_size=5000):
        yield row_of(seq, format_at(at), actor, kind, action_id, rollback_id, data, prev_hash, stored_hash)


def verify_since_checkpoint(
    *, anchors: Mapping[int, str] | None = None, anchor_conflicts: Iterable[int] = ()
) -> Verdict:
    """Verify only what was appended after the newest checkpoint, and checkpoint the head when it holds. The
    checkpoint's own event must still carry the hash it had (a rewrite of the prefix rehashed through it changes
    it), and anchors inside the prefix are held against their events one by one. What this cannot see (a row
    inside the prefix changed without touching those events) `verify_audit --full` finds: run it now and then.
    Without a checkpoint this is the full verification."""
    anchors = dict(anchors or {})
    checkpoint = AuditCheckpoint.objects.order_by("-seq", "-id").first()
    if checkpoint is None:
        return verify_and_checkpoint(anchors=anchors, anchor_conflicts=anchor_conflicts)
    with trail_snapshot():
        verdict = _verify_after(checkpoint.seq, checkpoint.hash, anchors)
        conflicts = sorted(anchor_conflicts)
        if conflicts and (verdict.broken_seq is None or conflicts[0] <= verdict.broken_seq):
            verdict = Verdict(ok=False, events=verdict.events, broken_seq=conflicts[0], reason=ANCHOR_CONFLICT)
        if not verdict.ok:
            verdict = dataclasses.replace(verdict, events=AuditEvent.objects.count())
    if verdict.ok and verdict.events > checkpoint.seq:
        record_checkpoint(verdict.events, verdict.head or GENESIS_HASH, full=False)
    return dataclasses.replace(verdict, since_checkpoint=checkpoint.seq)


def verify_and_checkpoint(
    *, anchors: Mapping[int, str] | None = None, anchor_conflicts: Iterable[int] = (), processes: int | None = None
) -> Verdict:
    """The full verification, checkpointing the head when the whole trail holds."""
    verdict = verify_chain(anchors=anchors, processes=processes, anchor_conflicts=anchor_conflicts)
    if verdict.ok and verdict.events:
        latest = AuditCheckpoint.objects.order_by("-seq", "-id").values_list("seq", flat=True).first()
        if latest != verdict.events:
            record_checkpoint(verdict.events, verdict.head or GENESIS_HASH, full=True)
    return verdict


def _verify_after(start_seq: int, start_hash: str, anchors: dict[int, str]) -> Verdict:
    head_seq, head_hash = chain_head()
    inside = {seq: digest for seq, digest in anchors.items() if seq <= start_seq}
    stored = dict(AuditEvent.objects.filter(seq__in=[start_seq, *inside]).values_list("seq", "hash"))
    problems = [(seq, ANCHOR) for seq, digest in inside.items() if stored.get(seq) != digest]
    if stored.get(start_seq) != start_hash:
        problems.append((start_seq, CHECKPOINT))
    if problems:
        seq, reason = min(problems)
        anchor = (seq, inside[seq]) if reason == ANCHOR else None
        return Verdict(ok=False, events=0, broken_seq=seq, reason=reason, anchor=anchor)
    later = {seq: digest for seq, digest in anchors.items() if seq > start_seq}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_auditevent")
            (top,) = cursor.fetchone()
        scan = scan_postgres_in(connection.connection, start_seq, max(top, start_seq), later)
    else:
        scan = scan_rows(orm_rows(after_seq=start_seq), later)
    verdict = join_scans(
        [scan], head_seq=head_seq, head_hash=head_hash, anchors=later, start_seq=start_seq, start_hash=start_hash
    )
    if verdict.ok:
        verdict = dataclasses.replace(verdict, events=head_seq, anchors_checked=len(anchors))
    return verdict


@dataclass(frozen=True)
class Standing:
    """What a page may say about the events it shows without reading the trail: whether each still hashes to its
    stored hash (recomputed here, from the row alone), and whether it lies within the newest checkpoint, the prefix
    the beat's verification (`verify_since_checkpoint`, every ten minutes) recomputed link by link."""

    checkpoint_seq: int
    checkpoint_at: datetime | None
    checkpoint_holds: bool  # the checkpoint's own event still carries the hash verified then
    altered: frozenset[int]  # shown events whose content no longer hashes to their stored hash

    def verified(self, seq: int) -> bool:
        return self.checkpoint_holds and 0 < seq <= self.checkpoint_seq and seq not in self.altered

    @property
    def holds(self) -> bool:
        return self.checkpoint_holds and not self.altered


def standing_of(events: Iterable[AuditEvent]) -> Standing:
    """Two small queries whatever the length of the trail: the newest checkpoint and its event's hash."""
    altered = frozenset(
        event.seq
        for event in events
        if event_hash(
            event.seq,
            format_at(event.at),
            event.actor,
            event.kind,
            event.action_id,
            event.rollback_id,
            event.data,
            event.prev_hash,
        )
        != event.hash
    )
    checkpoint = AuditCheckpoint.objects.order_by("-seq", "-id").first()
    if checkpoint is None:
        # Nothing verified yet, and nothing to contradict: only the events' own hashes speak.
        return Standing(checkpoint_seq=0, checkpoint_at=None, checkpoint_holds=True, altered=altered)
    stored = AuditEvent.objects.filter(seq=checkpoint.seq).values_list("hash", flat=True).first()
    return Standing(
        checkpoint_seq=checkpoint.seq,
        checkpoint_at=checkpoint.verified_at,
        checkpoint_holds=stored == checkpoint.hash,
        altered=altered,
    )
