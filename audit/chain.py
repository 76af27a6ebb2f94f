"""How one event is hashed, and how a run of events is checked. No Django here: the verifier's worker processes
and the offline check of an export import only this module.

An event's hash is SHA-256 over its canonical bytes: compact JSON with sorted keys
`{"action","actor","at","data","kind","prev_hash","rollback","seq"}`, where `data` is the stored canonical JSON
text inserted verbatim and `at` is UTC with microseconds (`2026-11-28T10:00:00.000000Z`). `canonical_row_bytes` is
the only place that builds them: the writer (through `canonical_bytes`), the verifier and the export's check.
"""

import hashlib
import re
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

# The first thing wrong with a chain, as `reason` in a verification report.
MALFORMED = "malformed"  # an exported line that is not an event at all
MISSING = "missing"  # no event with this seq, though a later one or the head says there should be
PREV_HASH = "prev_hash"  # the event does not point at the hash of the event before it
HASH = "hash"  # the event's content does not hash to its stored hash: it was changed
HEAD = "head"  # the chain head row disagrees with the last event
BEYOND_HEAD = "beyond_head"  # events exist past the head row: written around record_events
ANCHOR = "anchor"  # an anchor written out earlier names another hash for this seq: rewritten and rehashed
ANCHOR_MISSING = "anchor_missing"  # an anchor names a seq the trail no longer reaches: its tail was removed
ANCHOR_CONFLICT = "anchor_conflict"  # two anchors name different hashes for one seq: one of them is forged
CHECKPOINT = "checkpoint"  # the event a checkpoint ends at no longer has the hash verified then: the prefix changed


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def canonical_data(data: Any) -> str:
    """An event's data as stored and hashed: compact JSON with sorted keys. Parsing that text and calling this
    again gives the same text back, which is what lets an export be checked without the database."""
    return orjson.dumps(data, default=_default, option=orjson.OPT_SORT_KEYS).decode()


def format_at(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=4096)
def _json_string(value: bytes) -> bytes:
    # Actors and kinds repeat endlessly; escaping each distinct one once keeps the verifier fast.
    return orjson.dumps(value.decode())


def _id_token(value: int | None) -> bytes:
    return b"null" if value is None else b"%d" % value


def canonical_bytes(
    seq: int,
    at: str,
    actor: str,
    kind: str,
    action_id: int | None,
    rollback_id: int | None,
    data: str,
    prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers, from its values (`at` already canonical, `data` canonical JSON)."""
    return canonical_row_bytes(
        b"%d" % seq,
        at.encode(),
        actor.encode(),
        kind.encode(),
        _id_token(action_id),
        _id_token(rollback_id),
        data.encode(),
        prev_hash.encode(),
    )


def canonical_row_bytes(
    seq: bytes, at: bytes, actor: bytes, kind: bytes, action: bytes, rollback: bytes, data: bytes, prev_hash: bytes
) -> bytes:
    """The one builder of the canonical bytes, from a row's fields as UTF-8 (ids as JSON: decimal or `null`).
    The verifier calls it straight on the bytes the database sends: no decoding, parsing or re-encoding."""
    return b'{"action":%b,"actor":%b,"at":"%b","data":%b,"kind":%b,"prev_hash":"%b","rollback":%b,"seq":%b}' % (
        action,
        _json_string(actor),
        at,
        data,
        _json_string(kind),
        prev_hash,
        rollback,
        seq,
    )


def event_hash(
    seq: int,
    at: str,
    actor: str,
    kind: str,
    action_id: int | None,
    rollback_id: int | None,
    data: str,
    prev_hash: str,
) -> str:
    return hashlib.sha256(canonical_bytes(seq, at, actor, kind, action_id, rollback_id, data, prev_hash)).hexdigest()


# A row as the scan takes it: (seq, at, actor, kind, action, rollback, data, prev_hash, hash), every field UTF-8
# bytes as `canonical_row_bytes` takes them (`at` canonical, ids as JSON tokens).
Row = Sequence[bytes]


def row_of(
    seq: int,
    at: str,
    actor: str,
    kind: str,
    action_id: int | None,
    rollback_id: int | None,
    data: str,
    prev_hash: str,
    stored_hash: str,
) -> Row:
    """A row from an event's values, for the readers that do not get bytes from PostgreSQL's COPY."""
    return (
        b"%d" % seq,
        at.encode(),
        actor.encode(),
        kind.encode(),
        _id_token(action_id),
        _id_token(rollback_id),
        data.encode(),
        prev_hash.encode(),
        stored_hash.encode(),
    )


@dataclass
class Scan:
    """What one contiguous run of events showed: its ends (so runs scanned apart can be joined) and the first
    seq inside it that breaks, if any. The run's first event is only checked against itself; whoever joins runs
    checks that it follows the run before."""

    count: int = 0
    first_seq: int = 0
    first_prev_hash: str = ""
    last_seq: int = 0
    last_hash: str = ""
    broken_seq: int | None = None
    reason: str | None = None
    anchor: tuple[int, str] | None = None  # the anchor (seq, hash) that did not match, if that was the break


def scan_rows(rows: Iterable[Row], anchors: Mapping[int, str] | None = None) -> Scan:
    """Recompute every hash of a run ordered by seq and stop at the first break."""
    anchors = anchors or {}
    anchored = {seq: digest.encode() for seq, digest in anchors.items()}
    sha256, build = hashlib.sha256, canonical_row_bytes
    scan = Scan()
    count, seq, expected_seq, expected_prev = 0, 0, 0, b""
    for seq_text, at, actor, kind, action, rollback, data, prev_hash, stored_hash in rows:
        seq = int(seq_text)
        if count == 0:
            scan.first_seq, scan.first_prev_hash = seq, prev_hash.decode()
        elif seq != expected_seq:
            scan.broken_seq, scan.reason = expected_seq, MISSING
            break
        elif prev_hash != expected_prev:
            scan.broken_seq, scan.reason = seq, PREV_HASH
            break
        if sha256(build(seq_text, at, actor, kind, action, rollback, data, prev_hash)).hexdigest().encode() != (
            stored_hash
        ):
            scan.broken_seq, scan.reason = seq, HASH
            break
        if anchored and seq in anchored and anchored[seq] != stored_hash:
            scan.broken_seq, scan.reason, scan.anchor = seq, ANCHOR, (seq, anchors[seq])
            break
        count += 1
        expected_seq, expected_prev = seq + 1, stored_hash
    scan.count = count
    if count:
        scan.last_seq, scan.last_hash = expected_seq - 1, expected_prev.decode()
    return scan


@dataclass(frozen=True)
class Verdict:
    """A whole trail's verification: the contract's `{"ok", "events", "head"}` or `{"ok", "events", "broken_seq"}`,
    with the reason (and the anchor at fault) added so a person knows where to look."""

    ok: bool
    events: int
    head: str | None = None
    broken_seq: int | None = None
    reason: str | None = None
    anchor: tuple[int, str] | None = None
    anchors_checked: int = 0
    since_checkpoint: int | None = None  # an incremental check: the seq it started after

    def as_dict(self) -> dict[str, object]:
        if self.ok:
            report: dict[str, object] = {"ok": True, "events": self.events, "head": self.head}
        else:
            report = {"ok": False, "events": self.events, "broken_seq": self.broken_seq, "reason": self.reason}
            if self.anchor is not None:
                report["anchor"] = {"seq": self.anchor[0], "hash": self.anchor[1]}
        if self.anchors_checked:
            report["anchors_checked"] = self.anchors_checked
        if self.since_checkpoint is not None:
            report["since_checkpoint"] = self.since_checkpoint
        return report


def join_scans(
    scans: Iterable[Scan],
    *,
    head_seq: int,
    head_hash: str,
    anchors: Mapping[int, str] | None = None,
    events: int | None = None,
    conflicts: Iterable[int] = (),
    start_seq: int = 0,
    start_hash: str = GENESIS_HASH,
) -> Verdict:
    """Join runs scanned in seq order (each may be empty) and hold the result against the head row and anchors.

    Without `events`, the runs' own counts stand in: exact when the chain is whole, and only a lower bound when
    a run stopped early, so callers that can count the whole trail pass it (or replace it) for a broken one.
    `start_seq`/`start_hash` name the event before the first run (a range export starts after seq 0)."""
    verdict = _join_scans(list(scans), head_seq, head_hash, anchors or {}, events, start_seq, start_hash)
    conflicted = min(conflicts, default=None)
    if conflicted is not None and (verdict.broken_seq is None or conflicted <= verdict.broken_seq):
        return Verdict(ok=False, events=verdict.events, broken_seq=conflicted, reason=ANCHOR_CONFLICT)
    return verdict


def _join_scans(
    scans: list[Scan],
    head_seq: int,
    head_hash: str,
    anchors: Mapping[int, str],
    events: int | None,
    start_seq: int,
    start_hash: str,
) -> Verdict:
    total = sum(scan.count for scan in scans) if events is None else events

    def broken(seq: int, reason: str, anchor: tuple[int, str] | None = None) -> Verdict:
        return Verdict(ok=False, events=total, broken_seq=seq, reason=reason, anchor=anchor)

    last_seq, last_hash = start_seq, start_hash
    if start_seq in anchors and anchors[start_seq] != start_hash:
        return broken(start_seq, ANCHOR, (start_seq, anchors[start_seq]))
    for scan in scans:
        if scan.count == 0 and scan.broken_seq is None:
            continue
        if scan.first_seq != last_seq + 1:
            return broken(last_seq + 1, MISSING)
        if scan.first_prev_hash != last_hash:
            return broken(scan.first_seq, PREV_HASH)
        if scan.broken_seq is not None:
            return broken(scan.broken_seq, scan.reason or HASH, scan.anchor)
        last_seq, last_hash = scan.last_seq, scan.last_hash
    if head_seq > last_seq:
        return broken(last_seq + 1, MISSING)
    if head_seq < last_seq:
        return broken(head_seq + 1, BEYOND_HEAD)
    if head_hash != last_hash:
        return broken(head_seq, HEAD)
    beyond = [seq for seq in anchors if seq > last_seq]
    if beyond:
        first = min(beyond)
        return broken(last_seq + 1, ANCHOR_MISSING, (first, anchors[first]))
    checked = sum(1 for seq in anchors if seq >= start_seq)
    return Verdict(ok=True, events=total, head=last_hash, anchors_checked=checked)


_COPY_ESCAPES = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_COPY_ESCAPE = re.compile(rb"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)


def _copy_unescape(field: bytes) -> bytes:
    def replace(match: re.Match[bytes]) -> bytes:
        octal, hexa, char = match.groups()
        if octal:
            return bytes([int(octal, 8) & 0xFF])
        if hexa:
            return bytes([int(hexa, 16)])
        return _COPY_ESCAPES.get(char, char)

    return _COPY_ESCAPE.sub(replace, field)


# `at` is formatted by the server in the canonical form, and NULL ids print as JSON's `null`: a COPY row is then
# exactly the fields `canonical_row_bytes` takes. Only the id columns may be NULL; a text column that holds the word
# "null" prints the same, but is never read as an id.
COPY_COLUMNS = (
    "seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, kind, action_id, rollback_id, "
    "data, prev_hash, hash"
)
COPY_OPTIONS = "WITH (FORMAT text, NULL 'null')"


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


def _snapshot_id(snapshot: str) -> str:
    # SET TRANSACTION SNAPSHOT takes no bind parameter; the id comes from pg_export_snapshot(), checked anyway.
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    return snapshot


def scan_postgres_range(conninfo: str, snapshot: str, after_seq: int, up_to_seq: int, anchors: dict[int, str]) -> Scan:
    """Scan events with after_seq < seq <= up_to_seq in the exported snapshot. Runs in a worker process."""
    import psycopg  # here, so the offline check never needs a database driver

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(f"SET TRANSACTION SNAPSHOT '{_snapshot_id(snapshot)}'")
        try:
            return scan_postgres_in(conn, after_seq, up_to_seq, anchors)
        finally:
            conn.execute("COMMIT")


def scan_postgres_in(conn: Any, after_seq: int, up_to_seq: int, anchors: Mapping[int, str]) -> Scan:
    """Scan a range on an open psycopg connection, inside the transaction (and snapshot) the caller holds."""
    rows = copy_rows(conn, postgres_copy_sql(after_seq, up_to_seq))
    try:
        return scan_rows(rows, anchors)
    finally:
        rows.close()


def postgres_copy_sql(after_seq: int, up_to_seq: int) -> str:
    return (
        f"COPY (SELECT {COPY_COLUMNS} FROM audit_auditevent "
        f"WHERE seq > {int(after_seq)} AND seq <= {int(up_to_seq)} ORDER BY seq) TO STDOUT {COPY_OPTIONS}"
    )


def copy_rows(conn: Any, sql: str) -> Generator[list[bytes], None, None]:
    """The rows of a `COPY ... TO STDOUT` in text format as lists of fields, read straight from libpq: psycopg's
    own COPY iterator costs about as much per row as hashing it. The COPY is always read to its end, since leaving
    it early would leave the connection busy (and abort the caller's transaction)."""
    from psycopg import pq  # here, as above: the offline check imports this module and needs no database driver

    pgconn = conn.pgconn
    pgconn.send_query(sql.encode())
    result = pgconn.get_result()
    if result is None or result.status != pq.ExecStatus.COPY_OUT:
        message = result.error_message.decode(errors="replace") if result is not None else "no result"
        while pgconn.get_result() is not None:
            pass
        raise RuntimeError(f"COPY of the audit trail failed: {message}")
    read = pgconn.get_copy_data
    size = 0
    try:
        while True:
            size, block = read(0)
            if size < 0:
                break
            line = bytes(block)
            fields = line[:-1].split(b"\t")
            if b"\\" in line:
                # Rare: only data with escaped characters (or a backslash) needs COPY's escapes undone.
                fields = [_copy_unescape(field) for field in fields]
            yield fields
    finally:
        while size >= 0:
            size, _ = read(0)
        while (result := pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK:
                raise RuntimeError(f"COPY of the audit trail failed: {result.error_message.decode(errors='replace')}")


_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def parse_anchors(lines: Iterable[str | bytes], conflicts: set[int] | None = None) -> dict[int, str]:
    """Anchor lines `{"seq", "hash", "at"}` as {seq: hash}, the older line kept when two name one seq. Two anchors
    that name different hashes for one seq are added to `conflicts`: the verdict is then `anchor_conflict`, since
    no verifier can tell which one was forged."""
    anchors: dict[int, str] = {}
    merge_anchors(lines, anchors, set() if conflicts is None else conflicts)
    return anchors


def merge_anchors(lines: Iterable[str | bytes], anchors: dict[int, str], conflicts: set[int]) -> None:
    """Add the anchors of one more file (or receiver log) to `anchors`, noting seqs that disagree in `conflicts`."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            anchor = orjson.loads(line)
            seq, digest = anchor["seq"], anchor["hash"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f'anchor line {number} is not {{"seq", "hash", "at"}}: {error}') from error
        if type(seq) is not int or seq < 0 or not isinstance(digest, str) or not _HEX_HASH.fullmatch(digest):
            raise ValueError(f"anchor line {number} has a bad seq or hash")
        # An anchor of the empty trail (seq 0) says nothing.
        if seq > 0 and anchors.setdefault(seq, digest) != digest:
            conflicts.add(seq)


EXPORT_FORMAT = "rollback-console-audit/1"


def export_header(
    head_seq: int, head_hash: str, exported_at: str, start: tuple[int, str] | None = None, **extra: Any
) -> bytes:
    """The export's first line. `head` is the last event exported; a range export also names `start`, the event
    before its first one (seq and hash), which its first event must point at."""
    header: dict[str, Any] = {"format": EXPORT_FORMAT, "head": {"seq": head_seq, "hash": head_hash}}
    if start is not None:
        header["start"] = {"seq": start[0], "hash": start[1]}
    header["exported_at"] = exported_at
    return orjson.dumps({**header, **extra})


def export_line(row: Row) -> bytes:
    """One event as an export line. `data` goes in verbatim: it is already canonical JSON."""
    seq, at, actor, kind, action, rollback, data, prev_hash, stored_hash = row
    return (
        b'{"seq":%b,"at":"%b","actor":%b,"kind":%b,"action":%b,"rollback":%b,"data":%b,"prev_hash":"%b","hash":"%b"}'
        % (seq, at, _json_string(actor), _json_string(kind), action, rollback, data, prev_hash, stored_hash)
    )


class MalformedLine(ValueError):
    pass


_CANONICAL_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _row_from_export(line: bytes) -> Row:
    try:
        event = orjson.loads(line)
        values = (event["seq"], event["at"], event["actor"], event["kind"], event["action"], event["rollback"])
        data = canonical_data(event["data"])
        prev_hash, stored_hash = event["prev_hash"], event["hash"]
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, KeyError, TypeError) as error:
        raise MalformedLine(str(error)) from error
    seq, at, actor, kind, action_id, rollback_id = values
    if not (
        type(seq) is int
        and isinstance(at, str)
        and _CANONICAL_AT.fullmatch(at)
        and isinstance(actor, str)
        and isinstance(kind, str)
        and all(value is None or type(value) is int for value in (action_id, rollback_id))
        and all(isinstance(digest, str) and _HEX_HASH.fullmatch(digest) for digest in (prev_hash, stored_hash))
    ):
        raise MalformedLine("a field has the wrong type or form")
    return row_of(seq, at, actor, kind, action_id, rollback_id, data, prev_hash, stored_hash)


def verify_export(
    lines: Iterable[bytes], anchors: Mapping[int, str] | None = None, conflicts: Iterable[int] = ()
) -> Verdict:
    """Check an export without the database: every event's hash, the links between them, the head the export
    was taken at, and any anchors. `events` counts the event lines. A range export is checked from its `start`."""
    lines = iter(lines)
    try:
        header = orjson.loads(next(lines))
        head_seq, head_hash = header["head"]["seq"], header["head"]["hash"]
        start = header.get("start", {"seq": 0, "hash": GENESIS_HASH})
        start_seq, start_hash = start["seq"], start["hash"]
        if (
            header.get("format") != EXPORT_FORMAT
            or type(head_seq) is not int
            or not isinstance(head_hash, str)
            or type(start_seq) is not int
            or not isinstance(start_hash, str)
        ):
            raise ValueError
    except (StopIteration, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not an audit export: the first line must be its header ({EXPORT_FORMAT})") from error
    read = 0
    malformed_after: list[int] = []

    def rows() -> Iterator[Row]:
        nonlocal read
        last_seq = 0
        for line in lines:
            if not line.strip():
                continue
            read += 1
            try:
                row = _row_from_export(line)
            except MalformedLine:
                malformed_after.append(last_seq)
                return
            last_seq = int(row[0])
            yield row

    scan = scan_rows(rows(), anchors)
    for line in lines:  # count what a break left unread
        if line.strip():
            read += 1
    if malformed_after and scan.broken_seq is None:
        if scan.count == 0:
            scan.first_seq, scan.first_prev_hash = start_seq + 1, start_hash
        scan.broken_seq, scan.reason = max(malformed_after[0], start_seq) + 1, MALFORMED
    return join_scans(
        [scan],
        head_seq=head_seq,
        head_hash=head_hash,
        anchors=anchors,
        events=read,
        conflicts=conflicts,
        start_seq=start_seq,
        start_hash=start_hash,
    )
