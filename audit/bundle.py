"""Evidence that leaves the building: a directory an outside auditor can check without this project.

`write_bundle` writes `events.jsonl` (the export format, from one snapshot), `anchors.jsonl` (the anchor lines as
they were written out), `manifests/` (every policy version's TOML as loaded, with `index.json`), `README.txt`
and `verify.py` (a copy of `audit/verify_bundle.py`, standard library only).

The audit app imports no other app of ours, so it does not read policy versions itself: the policies app hands
them over through `register_manifest_source` when it starts (`policies.apps`).
"""

import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audit.chain import GENESIS_HASH, copy_rows, export_header, merge_anchors, postgres_copy_sql
from audit.export import write_lines
from audit.models import AuditEvent
from audit.selectors import audit_events
from audit.verification import chain_head, orm_rows, trail_snapshot

VERIFIER = Path(__file__).with_name("verify_bundle.py")


@dataclass(frozen=True)
class BundleManifest:
    """A policy version as the bundle carries it: its TOML as loaded and the content hash it was stored under."""

    id: int
    label: str
    content_hash: str
    source: str
    loaded_at: str


ManifestSource = Callable[[], Iterable[BundleManifest]]
_manifest_sources: list[ManifestSource] = []


def register_manifest_source(source: ManifestSource) -> None:
    if source not in _manifest_sources:
        _manifest_sources.append(source)


class BundleError(ValueError):
    """A bundle that cannot be written as asked (a bad range, an unknown rollback, an unreadable anchor file)."""


@dataclass(frozen=True)
class BundleSummary:
    directory: Path
    from_seq: int
    to_seq: int
    events: int
    anchors: int
    manifests: int


def write_bundle(
    directory: Path,
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    rollback_id: int | None = None,
    anchor_paths: Sequence[Path] | None = None,
) -> BundleSummary:
    """Write a bundle of the whole trail, of `from_seq`..`to_seq`, or of the span that holds one rollback's events
    (with everything it links: its actions' records). A range starts from the event before it: its header names
    that event's seq and hash, and an anchor at that seq, when there is one, vouches for it."""
    if anchor_paths is None:
        default = Path(settings.AUDIT_ANCHOR_PATH)
        anchor_paths = [default] if default.exists() else []
    with trail_snapshot():
        head_seq, head_hash = chain_head()
        selected: list[int] = []
        if rollback_id is not None:
            selected = list(audit_events(rollback_id=rollback_id).values_list("seq", flat=True))
            if not selected:
                raise BundleError(f"rollback {rollback_id} has no audit events")
            from_seq, to_seq = selected[0], selected[-1]
        first = 1 if from_seq is None else from_seq
        last = head_seq if to_seq is None else to_seq
        empty_trail = head_seq == 0 and from_seq is None and to_seq is None
        if not empty_trail and (first < 1 or last > head_seq or first > last):
            raise BundleError(f"the range must lie within 1..{head_seq} (the trail's head), from before to")
        whole = first == 1 and last == head_seq
        start = (first - 1, _hash_at(first - 1))
        extra: dict[str, Any] = {"trail_head": {"seq": head_seq, "hash": head_hash}}
        if not whole:
            extra["range"] = {"from_seq": first, "to_seq": last}
        if rollback_id is not None:
            extra["rollback"] = {"id": rollback_id, "seqs": selected}
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / "events.jsonl").open("wb") as out:
            header = export_header(
                last, _hash_at(last), timezone.now().isoformat(), start if first > 1 else None, **extra
            )
            out.write(header + b"\n")
            events = _write_events(out, first - 1, last)
        anchors = _write_anchors(directory / "anchors.jsonl", anchor_paths, first - 1, None if whole else last)
        manifests = _write_manifests(directory / "manifests")
    (directory / "README.txt").write_text(README)
    shutil.copyfile(VERIFIER, directory / "verify.py")
    return BundleSummary(directory, first, last, events, anchors, manifests)


def _hash_at(seq: int) -> str:
    if seq == 0:
        return GENESIS_HASH
    return str(AuditEvent.objects.values_list("hash", flat=True).get(seq=seq))


def _write_events(out: Any, after_seq: int, up_to_seq: int) -> int:
    if connection.vendor != "postgresql":
        return write_lines(out, orm_rows(after_seq=after_seq, up_to_seq=up_to_seq))
    rows = copy_rows(connection.connection, postgres_copy_sql(after_seq, up_to_seq))
    try:
        return write_lines(out, rows)
    finally:
        rows.close()


def _write_anchors(target: Path, sources: Sequence[Path], from_seq: int, to_seq: int | None) -> int:
    """Copy the anchor lines as they were written (so a reader can compare them with the original place), keeping
    those a range can be held against: from the event before it to its end. A whole trail keeps every line, those
    past its end too: they are how a removed tail shows."""
    kept: list[bytes] = []
    for source in sources:
        try:
            lines = source.read_bytes().splitlines()
            merge_anchors(lines, {}, set())
        except (OSError, ValueError) as error:
            raise BundleError(f"{source}: {error}") from error
        for line in lines:
            if not line.strip():
                continue
            seq = orjson.loads(line)["seq"]
            if seq >= from_seq and (to_seq is None or seq <= to_seq):
                kept.append(line)
    target.write_bytes(b"".join(line + b"\n" for line in kept))
    return len(kept)


def _write_manifests(folder: Path) -> int:
    folder.mkdir(exist_ok=True)
    index = []
    for source in _manifest_sources:
        for manifest in source():
            name = f"{manifest.id}-{manifest.content_hash[:12]}.toml"
            (folder / name).write_text(manifest.source, encoding="utf-8")
            index.append(
                {
                    "id": manifest.id,
                    "label": manifest.label,
                    "content_hash": manifest.content_hash,
                    "loaded_at": manifest.loaded_at,
                    "file": name,
                }
            )
    (folder / "index.json").write_bytes(orjson.dumps(index, option=orjson.OPT_INDENT_2) + b"\n")
    return len(index)


README = """\
Rollback Console: audit evidence bundle
=======================================

What is here
- events.jsonl   The audit trail. The first line is a header: the format, `head` (the last event here, seq and
                 hash), `start` (for a range: the event just before the first one here), `trail_head` (the whole
                 trail's head when this was written) and, for one rollback, the seqs of its own events. Then one
                 event per line: seq, at, actor, kind, action, rollback, data, prev_hash, hash.
- anchors.jsonl  The chain head {"seq", "hash", "at"} as it was written out of the database over time. Compare these
                 lines with the copies kept elsewhere (the anchor receiver, the file on the anchor host): the
                 anchors are only as trustworthy as the place you got them from.
- manifests/     Every policy version as loaded (TOML) and index.json: id, label, content hash, when loaded.
- verify.py      The checker. It needs Python 3.11 or later and nothing else; read it, it is short.

How to check
    python3 verify.py .

It recomputes every event's SHA-256 hash, checks that each event names the hash of the one before, that the last
event is the header's head, that every anchor names the hash the event at its seq has (and that no anchor names a
seq past the end: that would mean the newest events were removed), and that every manifest hashes to the content
hash recorded in the trail when it was loaded. It prints {"ok": true, "events": N, "head": "..."} and exits 0, or
{"ok": false, "events": N, "broken_seq": S, "reason": "..."} and exits 1, S being the first seq that breaks:
  hash             the event was changed after it was written
  prev_hash        the event does not follow the one before (events removed, inserted or reordered)
  missing          an event is absent where one should be
  head             the last event is not the head the header names
  anchor           an anchor names another hash for this seq: the trail was rewritten and rehashed up to here
  anchor_missing   an anchor names a seq past the end: the newest events were removed from here on
  anchor_conflict  two anchors name different hashes for one seq: one of them was forged
  manifest         a manifest does not hash to the hash recorded when it was loaded (S: its policy.loaded event)
  malformed        a line that is not an event

A range (or one rollback's events) is checked from the event before it, whose hash the header names: an anchor
at that seq, when there is one, vouches for it; otherwise it is as good as the trail it was taken from.
"""
