#!/usr/bin/env python3
"""Checks a Rollback Console evidence bundle with nothing but Python's standard library (3.11 or later).

    python3 verify.py BUNDLE_DIR

The bundle holds `events.jsonl` (a header line, then one audit event per line), `anchors.jsonl` (chain heads
written out of the database over time), `manifests/` (every policy version's TOML manifest and `index.json`).
This script recomputes every event's SHA-256 hash, checks that each event points at the one before it, holds the
chain against the anchors and the export's head, and recomputes each manifest's content hash. It prints one JSON
verdict, the same as `python manage.py verify_audit`:

    {"ok":true,"events":N,"head":"..."}                            exit status 0
    {"ok":false,"events":N,"broken_seq":S,"reason":"..."}          exit status 1
    (a bundle it cannot read at all)                               exit status 2, the reason on standard error

An event's hash covers its canonical bytes: compact JSON with sorted keys
{"action","actor","at","data","kind","prev_hash","rollback","seq"}, `data` exactly as it appears in its line.
The first event's prev_hash is 64 zeros; a bundle of a range starts from the `start` its header names instead.
"""

import hashlib
import json
import re
import sys
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

FORMAT = "rollback-console-audit/1"
GENESIS_HASH = "0" * 64
HEX_HASH = re.compile(r"[0-9a-f]{64}")

# What broke first, as `reason` (docs/audit.md explains each).
MALFORMED, MISSING, PREV_HASH, HASH, HEAD = "malformed", "missing", "prev_hash", "hash", "head"
ANCHOR, ANCHOR_MISSING, ANCHOR_CONFLICT, MANIFEST = "anchor", "anchor_missing", "anchor_conflict", "manifest"


class Unreadable(Exception):
    """The bundle cannot be checked at all (exit status 2)."""


class Malformed(Exception):
    """A line that is not an event as the exporter writes it."""


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# An event line exactly as the exporter writes it. The fields are taken from the line as bytes: the hash covers
# those very bytes, so what a reader of the line sees is what was hashed, and nothing is parsed and re-encoded.
EVENT_LINE = re.compile(
    rb'\{"seq":(0|[1-9][0-9]*),"at":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z)",'
    rb'"actor":("(?:[^"\\\x00-\x1f]|\\.)*"),"kind":("(?:[^"\\\x00-\x1f]|\\.)*"),'
    rb'"action":(null|-?[0-9]+),"rollback":(null|-?[0-9]+),"data":(\{.*\}),'
    rb'"prev_hash":"([0-9a-f]{64})","hash":"([0-9a-f]{64})"\}',
    re.DOTALL,
)
CANONICAL = b'{"action":%b,"actor":%b,"at":"%b","data":%b,"kind":%b,"prev_hash":"%b","rollback":%b,"seq":%b}'


def event_of(line: bytes) -> tuple[int, bytes, bytes, bytes, bytes, bytes]:
    """(seq, kind, data, prev_hash, hash, canonical bytes) of one event line; Malformed if it is not one."""
    match = EVENT_LINE.fullmatch(line)
    if match is None:
        raise Malformed("not an event line as the exporter writes it")
    seq, at, actor, kind, action, rollback, data, prev_hash, stored_hash = match.groups()
    canonical = CANONICAL % (action, actor, at, data, kind, prev_hash, rollback, seq)
    return int(seq), kind, data, prev_hash, stored_hash, canonical


def read_anchors(path: Path) -> tuple[dict[int, str], set[int]]:
    """{seq: hash} from anchor lines {"seq", "hash", "at"} (the older line kept), and the seqs two lines disagree on."""
    anchors: dict[int, str] = {}
    conflicts: set[int] = set()
    if not path.exists():
        return anchors, conflicts
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            anchor = json.loads(line)
            seq, digest = anchor["seq"], anchor["hash"]
        except (ValueError, KeyError, TypeError) as error:
            raise Unreadable(f'{path.name} line {number} is not {{"seq", "hash", "at"}}: {error}') from None
        if type(seq) is not int or seq < 0 or not isinstance(digest, str) or not HEX_HASH.fullmatch(digest):
            raise Unreadable(f"{path.name} line {number} has a bad seq or hash")
        if seq > 0 and anchors.setdefault(seq, digest) != digest:
            conflicts.add(seq)
    return anchors, conflicts


def manifest_json(value: Any) -> str:
    """A parsed manifest as the product hashes it: compact JSON, keys sorted, as the `orjson` library writes it.
    Python's json differs only in a float's negative exponent (1e-07 against 1e-7) and knows no dates."""
    if isinstance(value, dict):
        return "{" + ",".join(json_text(key) + ":" + manifest_json(value[key]) for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(manifest_json(item) for item in value) + "]"
    if isinstance(value, float):
        return re.sub(r"e-0+(\d)", r"e-\1", json_text(value))
    if isinstance(value, (datetime, date, time)):
        return json_text(value.isoformat())
    return json_text(value)


def manifest_hash(text: str) -> str:
    return hashlib.sha256(manifest_json(tomllib.loads(text)).encode()).hexdigest()


class Verifier:
    def __init__(self, bundle: Path):
        self.bundle = bundle
        self.anchors, self.conflicts = read_anchors(bundle / "anchors.jsonl")
        self.loaded: dict[int, tuple[int, str]] = {}  # policy version id -> (seq, hash) of its policy.loaded event
        self.events = 0

    def run(self) -> dict[str, Any]:
        try:
            lines = (self.bundle / "events.jsonl").open("rb")
        except OSError as error:
            raise Unreadable(f"events.jsonl: {error}") from None
        with lines:
            header = self.header(lines.readline())
            breaks = [self.scan(lines, header)]
            self.events += sum(1 for line in lines if line.strip())  # what a break left unread
        breaks.append(self.manifests())
        if self.conflicts:
            breaks.append((min(self.conflicts), ANCHOR_CONFLICT, None))
        found = [found for found in breaks if found is not None]
        if found:
            # The first seq that breaks; at one seq a conflict between anchors is named before anything else.
            order = {ANCHOR_CONFLICT: 0}
            seq, reason, detail = min(found, key=lambda found: (found[0] or 0, order.get(found[1], 1)))
            verdict: dict[str, Any] = {"ok": False, "events": self.events, "broken_seq": seq, "reason": reason}
            if detail:
                verdict.update(detail)
            return verdict
        verdict = {"ok": True, "events": self.events, "head": header["head"]["hash"]}
        checked = sum(1 for seq in self.anchors if seq >= header["start"]["seq"])
        if checked:
            verdict["anchors_checked"] = checked
        verdict["manifests_checked"] = len(self.index)
        return verdict

    def header(self, line: bytes) -> dict[str, Any]:
        try:
            header = json.loads(line)
            header.setdefault("start", {"seq": 0, "hash": GENESIS_HASH})
            for end in (header["head"], header["start"]):
                if type(end["seq"]) is not int or not HEX_HASH.fullmatch(end["hash"]):
                    raise ValueError
            if header.get("format") != FORMAT:
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Unreadable(f"events.jsonl: the first line must be the export's header ({FORMAT})") from None
        return dict(header)

    def scan(self, lines: Any, header: dict[str, Any]) -> tuple[int, str, dict[str, Any] | None] | None:
        """Every event in order: its hash, its link to the one before, the anchors. The first break, if any."""
        anchors, sha256 = self.anchors, hashlib.sha256
        last_seq, last_hash = header["start"]["seq"], header["start"]["hash"]
        if anchors.get(last_seq, last_hash) != last_hash:
            return last_seq, ANCHOR, {"anchor": {"seq": last_seq, "hash": anchors[last_seq]}}
        anchored = {seq: digest.encode() for seq, digest in anchors.items()}
        last_hash_bytes = last_hash.encode()
        for line in lines:
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            self.events += 1
            try:
                seq, kind, data, prev_hash, stored_hash, canonical = event_of(line)
            except Malformed:
                return last_seq + 1, MALFORMED, None
            if seq != last_seq + 1:
                return last_seq + 1, MISSING, None
            if prev_hash != last_hash_bytes:
                return seq, PREV_HASH, None
            if sha256(canonical).hexdigest().encode() != stored_hash:
                return seq, HASH, None
            if seq in anchored and anchored[seq] != stored_hash:
                return seq, ANCHOR, {"anchor": {"seq": seq, "hash": anchors[seq]}}
            if kind == b'"policy.loaded"':
                self.note_policy_loaded(seq, data)
            last_seq, last_hash_bytes = seq, stored_hash
        last_hash = last_hash_bytes.decode()
        head = header["head"]
        if head["seq"] > last_seq:
            return last_seq + 1, MISSING, None
        if head["seq"] < last_seq:
            return head["seq"] + 1, "beyond_head", None
        if head["hash"] != last_hash:
            return last_seq, HEAD, None
        beyond = [seq for seq in anchors if seq > last_seq]
        if beyond:
            first = min(beyond)
            return last_seq + 1, ANCHOR_MISSING, {"anchor": {"seq": first, "hash": anchors[first]}}
        return None

    def note_policy_loaded(self, seq: int, data: bytes) -> None:
        """Remember which content hash the trail recorded for a policy version when it was loaded."""
        loaded = json.loads(data)  # its hash held: the writer's own canonical JSON object
        if (
            isinstance(loaded, dict)
            and type(loaded.get("policy_version_id")) is int
            and isinstance(loaded.get("hash"), str)
        ):
            self.loaded[loaded["policy_version_id"]] = (seq, loaded["hash"])

    @property
    def index(self) -> list[dict[str, Any]]:
        path = self.bundle / "manifests" / "index.json"
        if not path.exists():
            return []
        try:
            index = json.loads(path.read_bytes())
            if not isinstance(index, list) or not all(isinstance(entry, dict) for entry in index):
                raise ValueError
        except ValueError:
            raise Unreadable("manifests/index.json is not a list of manifests") from None
        return index

    def manifests(self) -> tuple[int, str, dict[str, Any] | None] | None:
        """Each manifest must hash to the content hash the index gives it, and that hash must be the one its
        `policy.loaded` event recorded when it was loaded (when the bundle holds that event)."""
        found = []
        for entry in self.index:
            name = str(entry.get("file", ""))
            try:
                text = (self.bundle / "manifests" / Path(name).name).read_text(encoding="utf-8")
                digest = manifest_hash(text)
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
                digest = f"unreadable: {error}"
            seq, recorded = self.loaded.get(entry.get("id"), (None, entry.get("content_hash")))  # type: ignore[arg-type]
            if digest != entry.get("content_hash") or digest != recorded:
                found.append((seq, MANIFEST, {"manifest": name}))
        return min(found, key=lambda found: found[0] or 0) if found else None


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        verdict = Verifier(Path(argv[1])).run()
    except Unreadable as error:
        print(f"verify.py: {error}", file=sys.stderr)
        return 2
    print(json_text(verdict))
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
