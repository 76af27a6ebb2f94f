import io

import orjson
import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from audit.services import anchor_audit_head
from tests.audit.conftest import AWKWARD_DATA, head, record


@pytest.fixture
def exported(cast, tmp_path):
    """A trail with awkward data, exported to a file."""
    record(3, data=AWKWARD_DATA)
    record(2, kind="rollback.signoff", actor="vera", rollback_id=9, data={"decision": "approve"})
    path = tmp_path / "trail.jsonl"
    call_command("export_audit", "--output", str(path), stderr=io.StringIO())
    return path


def verify_offline(path, *extra) -> tuple[dict, bool]:
    out = io.StringIO()
    try:
        call_command("verify_audit", "--from-export", str(path), *extra, stdout=out)
    except CommandError:
        return orjson.loads(out.getvalue()), False
    return orjson.loads(out.getvalue()), True


def test_an_export_holds_a_header_and_every_event_with_its_data_as_an_object(exported):
    header, *events = [orjson.loads(line) for line in exported.read_bytes().splitlines()]
    assert header["format"] == "rollback-console-audit/1"
    assert (header["head"]["seq"], header["head"]["hash"]) == head()
    assert [event["seq"] for event in events] == list(AuditEvent.objects.values_list("seq", flat=True))
    assert events[-3]["data"] == {"n": 2, **AWKWARD_DATA}
    assert set(events[-1]) == {"seq", "at", "actor", "kind", "action", "rollback", "data", "prev_hash", "hash"}
    assert (events[-1]["actor"], events[-1]["rollback"]) == ("vera", 9)


def test_an_export_verifies_without_the_database(exported):
    report, ok = verify_offline(exported)
    assert ok
    assert report == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}


def test_an_export_is_checked_against_anchors_too(exported, tmp_path):
    anchors = tmp_path / "anchors.jsonl"
    anchor_audit_head(anchors)
    report, ok = verify_offline(exported, "--anchor", str(anchors))
    assert ok and report["anchors_checked"] == 1


def test_export_audit_writes_to_standard_output_by_default(cast):
    record(1)
    out = io.StringIO()
    call_command("export_audit", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + AuditEvent.objects.count()


def edit_line(path, index: int, change) -> int:
    """Apply `change` to the event on line `index` (0 is the header); return that event's seq."""
    lines = path.read_bytes().splitlines()
    event = orjson.loads(lines[index])
    change(event)
    lines[index] = orjson.dumps(event)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return event["seq"]


def test_an_edited_line_is_named_by_its_seq(exported):
    seq = edit_line(exported, -3, lambda event: event["data"].update(amount="0.00"))
    report, ok = verify_offline(exported)
    assert not ok
    assert report == {"ok": False, "events": AuditEvent.objects.count(), "broken_seq": seq, "reason": "hash"}


def test_an_edited_actor_is_named_by_its_seq(exported):
    seq = edit_line(exported, -1, lambda event: event.update(actor="mallory"))
    report, ok = verify_offline(exported)
    assert (ok, report["broken_seq"]) == (False, seq)


def test_a_removed_line_is_named(exported):
    lines = exported.read_bytes().splitlines()
    removed = orjson.loads(lines[-2])["seq"]
    exported.write_bytes(b"\n".join(lines[:-2] + lines[-1:]) + b"\n")
    report, ok = verify_offline(exported)
    assert (ok, report["broken_seq"], report["reason"]) == (False, removed, "missing")


def test_a_cut_off_export_is_named_by_its_header(exported):
    lines = exported.read_bytes().splitlines()
    last = orjson.loads(lines[-1])["seq"]
    exported.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    report, ok = verify_offline(exported)
    assert (ok, report["broken_seq"], report["reason"]) == (False, last, "missing")


def test_a_line_that_is_not_an_event_is_named(exported):
    lines = exported.read_bytes().splitlines()
    seq = orjson.loads(lines[2])["seq"]
    lines[2] = b'{"seq": "two"'
    exported.write_bytes(b"\n".join(lines) + b"\n")
    report, ok = verify_offline(exported)
    assert (ok, report["broken_seq"], report["reason"]) == (False, seq, "malformed")


def test_a_file_that_is_not_an_export_is_refused(cast, tmp_path):
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": "world"}\n')
    with pytest.raises(CommandError, match="not an audit export"):
        call_command("verify_audit", "--from-export", str(other), stdout=io.StringIO())
