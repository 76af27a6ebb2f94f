"""The evidence bundle and its verify.py, run as an outsider runs it: a plain `python3 -I -S` (no project, no
site-packages on the path) over a copy of the bundle, tampered with the way an attacker would."""

import contextlib
import io
import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from audit.models import AuditEvent
from audit.services import EventSpec, anchor_audit_head, record_events
from policies.models import PolicyVersion
from tests.audit.conftest import AWKWARD_DATA, head, record, rehash_from, superuser_tampering, triggers_disabled

# What the writer must hash exactly as verify.py reads it back: unicode in keys and values, nesting, nulls,
# integers at orjson's limits, decimals (stored as strings), floats, empty containers, escapes of every kind.
TRICKY_DATA = {
    "ünïcødé ☃": "日本語 🚀 \u2028\u2029",
    "nested": {"list": [1, None, {"deeper": [True, False, []]}], "empty": {}},
    "null": None,
    "big": 2**63 - 1,
    "small": -(2**63),
    "unsigned": 2**64 - 1,
    "amount": Decimal("1234567890.000000001"),
    "float": 0.1,
    "tiny": 1e-7,
    "huge": 1.5e300,
    "controls": "\x00\x01\x1f\x7f",
    **AWKWARD_DATA,
}


def run_verify(bundle: Path) -> tuple[int, dict]:
    """verify.py as an auditor runs it: isolated mode, no site-packages, nothing of ours importable."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(bundle / "verify.py"), str(bundle)],
        capture_output=True,
        cwd=bundle.parent,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    return result.returncode, json.loads(result.stdout)


def verify_with_the_project(bundle: Path) -> dict:
    """The same bundle through `verify_audit --from-export`, which shares chain.py with the writer."""
    out = io.StringIO()
    with contextlib.suppress(CommandError):
        call_command(
            "verify_audit",
            "--from-export",
            str(bundle / "events.jsonl"),
            "--anchor",
            str(bundle / "anchors.jsonl"),
            stdout=out,
        )
    return orjson.loads(out.getvalue())


def write(bundle: Path, *extra: str) -> Path:
    call_command("export_audit", "--bundle", str(bundle), *extra, stderr=io.StringIO())
    return bundle


@pytest.fixture
def anchor_file(tmp_path, settings):
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors.jsonl")
    return tmp_path / "anchors.jsonl"


@pytest.fixture
def trail(cast, anchor_file):
    """Events written by the real writer (after the seed's), anchored twice: in the middle and at the head.
    `ours[i]` is the seq of the i-th event written here."""
    events = record(3, data=TRICKY_DATA)
    events += record(2, kind="rollback.signoff", actor='vérä "q"', rollback_id=9, data={"decision": "approve"})
    anchor_audit_head()
    events += record(4, kind="action.recorded", actor="shop", action_id=5, data={"payload": {"amount": "25.00"}})
    events += record(2, kind="rollback.step.reversed", actor="system", rollback_id=9, data={"outcome": "reversed"})
    anchor_audit_head()
    return SimpleNamespace(head=head(), ours=[event.seq for event in events])


@pytest.fixture
def bundle(trail, tmp_path):
    return write(tmp_path / "bundle")


@pytest.fixture
def ours(trail):
    return trail.ours


def lines_of(bundle: Path) -> list[bytes]:
    return (bundle / "events.jsonl").read_bytes().splitlines()


def rewrite(bundle: Path, lines: list[bytes]) -> None:
    (bundle / "events.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def line_of(lines: list[bytes], seq: int) -> int:
    return next(index for index, line in enumerate(lines) if index and orjson.loads(line)["seq"] == seq)


def test_a_bundle_holds_the_trail_the_anchors_the_manifests_a_readme_and_the_verifier(bundle, trail):
    assert sorted(path.name for path in bundle.iterdir()) == [
        "README.txt",
        "anchors.jsonl",
        "events.jsonl",
        "manifests",
        "verify.py",
    ]
    index = json.loads((bundle / "manifests" / "index.json").read_bytes())
    versions = PolicyVersion.objects.order_by("id")
    assert [entry["content_hash"] for entry in index] == [version.content_hash for version in versions]
    for entry, version in zip(index, versions, strict=True):
        assert (bundle / "manifests" / entry["file"]).read_text() == version.source
    assert len((bundle / "anchors.jsonl").read_bytes().splitlines()) == 2
    assert orjson.loads(lines_of(bundle)[0])["head"] == {"seq": trail.head[0], "hash": trail.head[1]}


def test_verify_py_with_the_standard_library_alone_agrees_with_the_writer_on_every_hash(bundle, trail):
    status, verdict = run_verify(bundle)
    events = AuditEvent.objects.count()
    assert (status, verdict) == (
        0,
        {"ok": True, "events": events, "head": trail.head[1], "anchors_checked": 2, "manifests_checked": 1},
    )
    ours = verify_with_the_project(bundle)
    assert ours == {"ok": True, "events": events, "head": trail.head[1], "anchors_checked": 2}


def test_verify_py_computes_a_manifests_content_hash_as_the_policies_app_does(bundle):
    from policies.services import content_hash

    sys.path.insert(0, str(bundle))
    try:
        import verify  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(bundle))
    document = {"version": "x", "when": 1e-7, "big": 2**62, "n": [0.5, 1e22], "ü": {"b": True, "a": None}}
    assert verify.manifest_json(document) == orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode()
    for version in PolicyVersion.objects.all():
        assert verify.manifest_hash(version.source) == version.content_hash == content_hash(version.manifest)


class TestTheTamperCorpus:
    """Each attack on a bundle, named by verify.py with its first broken seq and reason, as verify_audit does."""

    def assert_broken(self, bundle: Path, seq: int, reason: str, *, same_as_project: bool = True) -> dict:
        status, verdict = run_verify(bundle)
        assert status == 1
        assert (verdict["ok"], verdict["broken_seq"], verdict["reason"]) == (False, seq, reason)
        if same_as_project:
            assert verify_with_the_project(bundle) == verdict
        return verdict

    def test_a_changed_field_is_caught_at_its_seq(self, bundle, ours):
        lines = lines_of(bundle)
        index = line_of(lines, ours[3])
        lines[index] = lines[index].replace(b'"decision":"approve"', b'"decision":"reject"')
        rewrite(bundle, lines)
        self.assert_broken(bundle, ours[3], "hash")

    def test_a_changed_actor_is_caught_at_its_seq(self, bundle, ours):
        lines = lines_of(bundle)
        index = line_of(lines, ours[1])
        event = orjson.loads(lines[index])
        lines[index] = lines[index].replace(orjson.dumps(event["actor"]), b'"mallory"')
        rewrite(bundle, lines)
        self.assert_broken(bundle, ours[1], "hash")

    def test_a_removed_middle_event_is_caught_where_it_is_missing(self, bundle, ours):
        lines = lines_of(bundle)
        del lines[line_of(lines, ours[5])]
        rewrite(bundle, lines)
        verdict = self.assert_broken(bundle, ours[5], "missing")
        assert verdict["events"] == AuditEvent.objects.count() - 1

    def test_a_truncated_tail_with_the_header_moved_back_is_caught_by_the_anchors(self, bundle, trail):
        lines = lines_of(bundle)
        kept = orjson.loads(lines[-3])
        header = orjson.loads(lines[0])
        header["head"] = {"seq": kept["seq"], "hash": kept["hash"]}
        rewrite(bundle, [orjson.dumps(header), *lines[1:-2]])
        verdict = self.assert_broken(bundle, kept["seq"] + 1, "anchor_missing")
        assert verdict["anchor"] == {"seq": trail.head[0], "hash": trail.head[1]}

    def test_two_swapped_events_are_caught_at_the_first_of_them(self, bundle, ours):
        lines = lines_of(bundle)
        index = line_of(lines, ours[6])
        lines[index], lines[index + 1] = lines[index + 1], lines[index]
        rewrite(bundle, lines)
        self.assert_broken(bundle, ours[6], "missing")

    def test_two_events_swapped_and_renumbered_are_caught_at_the_first_of_them(self, bundle, ours):
        lines = lines_of(bundle)
        index = line_of(lines, ours[6])
        first, second = orjson.loads(lines[index]), orjson.loads(lines[index + 1])
        lines[index] = lines[index + 1].replace(b'{"seq":%d,' % second["seq"], b'{"seq":%d,' % first["seq"])
        lines[index + 1] = lines[index].replace(b'{"seq":%d,' % first["seq"], b'{"seq":%d,' % second["seq"])
        rewrite(bundle, lines)
        self.assert_broken(bundle, ours[6], "prev_hash")

    def test_a_forged_anchor_is_caught_at_its_seq(self, bundle):
        anchors = (bundle / "anchors.jsonl").read_bytes().splitlines()
        first = orjson.loads(anchors[0])
        anchors[0] = orjson.dumps({**first, "hash": "f" * 64})
        (bundle / "anchors.jsonl").write_bytes(b"\n".join(anchors) + b"\n")
        verdict = self.assert_broken(bundle, first["seq"], "anchor")
        assert verdict["anchor"] == {"seq": first["seq"], "hash": "f" * 64}

    def test_a_second_anchor_naming_another_hash_for_a_seq_is_an_anchor_conflict(self, bundle):
        first = orjson.loads((bundle / "anchors.jsonl").read_bytes().splitlines()[0])
        with (bundle / "anchors.jsonl").open("ab") as anchors:
            anchors.write(orjson.dumps({**first, "hash": "e" * 64}) + b"\n")
        self.assert_broken(bundle, first["seq"], "anchor_conflict")

    def test_a_manifest_changed_after_the_fact_is_caught_at_its_policy_loaded_event(self, bundle):
        [entry] = json.loads((bundle / "manifests" / "index.json").read_bytes())
        manifest = bundle / "manifests" / entry["file"]
        manifest.write_text(manifest.read_text().replace('window = "30d"', 'window = "365d"', 1))
        loaded = AuditEvent.objects.get(kind="policy.loaded", data__contains=entry["content_hash"])
        verdict = self.assert_broken(bundle, loaded.seq, "manifest", same_as_project=False)
        assert verdict["manifest"] == entry["file"]

    def test_a_manifest_rehashed_in_the_index_still_differs_from_the_hash_the_trail_recorded(self, bundle):
        loaded = AuditEvent.objects.get(kind="policy.loaded")
        [entry] = json.loads((bundle / "manifests" / "index.json").read_bytes())
        manifest = bundle / "manifests" / entry["file"]
        manifest.write_text(manifest.read_text().replace('window = "30d"', 'window = "365d"', 1))
        sys.path.insert(0, str(bundle))
        try:
            import verify  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(bundle))
        entry["content_hash"] = verify.manifest_hash(manifest.read_text())
        (bundle / "manifests" / "index.json").write_text(json.dumps([entry]))
        self.assert_broken(bundle, loaded.seq, "manifest", same_as_project=False)

    def test_a_line_that_is_not_an_event_is_malformed(self, bundle, ours):
        lines = lines_of(bundle)
        lines[line_of(lines, ours[2])] = b'{"seq": %d, "note": "not an event"}' % ours[2]
        rewrite(bundle, lines)
        self.assert_broken(bundle, ours[2], "malformed")

    def test_data_that_hides_a_second_key_does_not_hash_to_the_event(self, bundle, ours):
        lines = lines_of(bundle)
        index = line_of(lines, ours[3])
        lines[index] = lines[index].replace(b'"data":{', b'"data":{},"data":{', 1)
        rewrite(bundle, lines)
        status, verdict = run_verify(bundle)
        assert (status, verdict["broken_seq"], verdict["reason"]) == (1, ours[3], "hash")


@pytest.mark.parametrize("layout", ["no_events_file", "bad_header"])
def test_a_directory_that_is_no_bundle_is_refused_with_exit_status_2(bundle, layout):
    if layout == "no_events_file":
        (bundle / "events.jsonl").unlink()
    else:
        rewrite(bundle, [b'{"format": "something else"}', *lines_of(bundle)[1:]])
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(bundle / "verify.py"), str(bundle)], capture_output=True, timeout=60
    )
    assert result.returncode == 2
    assert b"events.jsonl" in result.stderr


class TestARange:
    def test_a_range_verifies_on_its_own_from_the_event_before_it(self, trail, tmp_path):
        first, last = trail.ours[2], trail.ours[7]
        bundle = write(tmp_path / "range", "--from-seq", str(first), "--to-seq", str(last))
        header = orjson.loads(lines_of(bundle)[0])
        assert header["start"] == {"seq": first - 1, "hash": AuditEvent.objects.get(seq=first - 1).hash}
        assert header["range"] == {"from_seq": first, "to_seq": last}
        status, verdict = run_verify(bundle)
        last_hash = AuditEvent.objects.get(seq=last).hash
        assert (status, verdict["ok"], verdict["events"], verdict["head"]) == (0, True, 6, last_hash)
        assert verify_with_the_project(bundle)["ok"] is True

    def test_a_range_keeps_only_the_anchors_it_can_be_held_against(self, trail, tmp_path):
        first_anchor = orjson.loads(Path(tmp_path / "anchors.jsonl").read_bytes().splitlines()[0])
        bundle = write(tmp_path / "range", "--from-seq", str(first_anchor["seq"] + 1))
        kept = [orjson.loads(line)["seq"] for line in (bundle / "anchors.jsonl").read_bytes().splitlines()]
        assert kept == [first_anchor["seq"], trail.head[0]]
        status, verdict = run_verify(bundle)
        assert (status, verdict["anchors_checked"]) == (0, 2)

    def test_a_range_whose_start_disagrees_with_the_anchor_there_is_caught(self, trail, tmp_path):
        first_anchor = orjson.loads(Path(tmp_path / "anchors.jsonl").read_bytes().splitlines()[0])
        bundle = write(tmp_path / "range", "--from-seq", str(first_anchor["seq"] + 1))
        lines = lines_of(bundle)
        header = orjson.loads(lines[0])
        header["start"]["hash"] = "d" * 64
        rewrite(bundle, [orjson.dumps(header), *lines[1:]])
        status, verdict = run_verify(bundle)
        assert (status, verdict["broken_seq"], verdict["reason"]) == (1, first_anchor["seq"], "anchor")

    def test_one_rollback_with_everything_it_links_verifies_on_its_own(self, cast, anchor_file, tmp_path):
        record(3)
        with transaction.atomic():
            [recorded] = record_events([EventSpec(kind="action.recorded", actor="shop", action_id=41)])
        record(2)
        with transaction.atomic():
            from audit.services import record_event

            requested = record_event("rollback.requested", actor="ines", rollback_id=77, links=[41])
        record(2)
        bundle = write(tmp_path / "rollback", "--rollback", "77")
        header = orjson.loads(lines_of(bundle)[0])
        assert header["rollback"] == {"id": 77, "seqs": [recorded.seq, requested.seq]}
        assert header["range"] == {"from_seq": recorded.seq, "to_seq": requested.seq}
        status, verdict = run_verify(bundle)
        assert (status, verdict["ok"], verdict["events"]) == (0, True, requested.seq - recorded.seq + 1)

    @pytest.mark.parametrize(
        ("arguments", "message"),
        [
            (["--from-seq", "0"], "within 1.."),
            (["--to-seq", "100000"], "within 1.."),
            (["--from-seq", "5", "--to-seq", "4"], "within 1.."),
            (["--rollback", "999999"], "rollback 999999 has no audit events"),
            (["--rollback", "1", "--from-seq", "2"], "without --from-seq"),
        ],
    )
    def test_a_bundle_asked_for_badly_is_refused_with_a_clear_error(self, trail, tmp_path, arguments, message):
        with pytest.raises(CommandError, match=message):
            write(tmp_path / "bad", *arguments)

    def test_range_options_without_bundle_are_refused(self, trail):
        with pytest.raises(CommandError, match="go with --bundle"):
            call_command("export_audit", "--from-seq", "2", stdout=io.StringIO())


class TestAgainstTheDatabase:
    pytestmark = superuser_tampering

    def test_a_trail_rewritten_and_rehashed_in_the_database_is_caught_in_its_bundle_by_the_anchors(
        self, trail, tmp_path
    ):
        with triggers_disabled():
            AuditEvent.objects.filter(seq=3).update(data='{"amount":"0.00"}')
            rehash_from(3)
        bundle = write(tmp_path / "bundle")
        first_anchor = orjson.loads(Path(tmp_path / "anchors.jsonl").read_bytes().splitlines()[0])
        status, verdict = run_verify(bundle)
        assert (status, verdict["broken_seq"], verdict["reason"]) == (1, first_anchor["seq"], "anchor")
        shutil.rmtree(bundle)
