import io

import orjson
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.chain import parse_anchors
from audit.models import AuditChainHead, AuditEvent
from audit.services import anchor_audit_head
from audit.tasks import anchor_audit_head as anchor_task
from audit.verification import verify_chain
from tests.audit.conftest import head, record, rehash_from, superuser_tampering, triggers_disabled


@pytest.fixture
def anchor_file(tmp_path, settings):
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors" / "audit.jsonl")
    return tmp_path / "anchors" / "audit.jsonl"


def anchors_in(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_anchor_audit_appends_the_head_as_one_json_line(cast, anchor_file):
    record(2)
    call_command("anchor_audit", stdout=io.StringIO())
    record(1)
    call_command("anchor_audit", stdout=io.StringIO())
    first, second = anchors_in(anchor_file)
    assert set(first) == {"seq", "hash", "at"}
    assert (second["seq"], second["hash"]) == head()
    assert second["seq"] == first["seq"] + 1


def test_the_beat_task_writes_the_same_anchor_through_the_same_service(cast, anchor_file):
    record(1)
    anchor_task.apply()
    [anchor] = anchors_in(anchor_file)
    assert (anchor["seq"], anchor["hash"]) == head()
    assert settings.CELERY_BEAT_SCHEDULE["anchor-audit-head"] == {
        "task": "audit.tasks.anchor_audit_head",
        "schedule": 300.0,
    }
    assert anchor_task.name == "audit.tasks.anchor_audit_head"


def test_a_whole_chain_agrees_with_its_anchors(cast, anchor_file):
    record(3)
    anchor_audit_head()
    record(3)
    anchor_audit_head()
    out = io.StringIO()
    call_command("verify_audit", "--anchor", str(anchor_file), stdout=out)
    assert orjson.loads(out.getvalue()) == {
        "ok": True,
        "events": AuditEvent.objects.count(),
        "head": head()[1],
        "anchors_checked": 2,
    }


def test_an_anchor_file_that_is_not_anchors_is_refused(cast, tmp_path):
    bad = tmp_path / "anchors.jsonl"
    bad.write_text('{"seq": 1, "hash": "abc"}\n')
    with pytest.raises(CommandError, match="anchor line 1"):
        call_command("verify_audit", "--anchor", str(bad), stdout=io.StringIO())
    with pytest.raises(CommandError, match="No such file"):
        call_command("verify_audit", "--anchor", str(tmp_path / "absent.jsonl"), stdout=io.StringIO())


def test_when_two_anchors_name_one_seq_the_older_one_is_kept_and_the_seq_noted_as_a_conflict():
    old, new = "a" * 64, "b" * 64
    lines = [orjson.dumps({"seq": 4, "hash": old, "at": "t1"}), orjson.dumps({"seq": 4, "hash": new, "at": "t2"})]
    conflicts: set[int] = set()
    assert parse_anchors([*lines, lines[0]], conflicts) == {4: old}
    assert conflicts == {4}


def test_the_same_anchor_written_twice_is_no_conflict():
    line = orjson.dumps({"seq": 4, "hash": "a" * 64, "at": "t1"})
    conflicts: set[int] = set()
    assert parse_anchors([line, line], conflicts) == {4: "a" * 64}
    assert conflicts == set()


def test_two_anchors_for_one_seq_with_different_hashes_break_verification_with_anchor_conflict(cast, anchor_file):
    record(3)
    anchor_audit_head()
    record(2)
    anchor_audit_head()
    first, _ = anchors_in(anchor_file)
    forged = orjson.dumps({**first, "hash": "f" * 64})
    anchor_file.write_bytes(anchor_file.read_bytes() + forged + b"\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match=f"breaks at seq {first['seq']} \\(anchor_conflict\\)"):
        call_command("verify_audit", "--anchor", str(anchor_file), stdout=out)
    assert orjson.loads(out.getvalue()) == {
        "ok": False,
        "events": AuditEvent.objects.count(),
        "broken_seq": first["seq"],
        "reason": "anchor_conflict",
    }


def test_anchors_in_two_files_that_disagree_on_a_seq_are_a_conflict_too(cast, anchor_file, tmp_path):
    record(3)
    anchor_audit_head()
    [anchor] = anchors_in(anchor_file)
    other = tmp_path / "receiver.jsonl"
    other.write_bytes(orjson.dumps({**anchor, "hash": "e" * 64}) + b"\n")
    out = io.StringIO()
    with pytest.raises(CommandError, match="anchor_conflict"):
        call_command("verify_audit", "--anchor", str(anchor_file), "--anchor", str(other), stdout=out)
    assert orjson.loads(out.getvalue())["broken_seq"] == anchor["seq"]


class TestASuperuserRewritingTheTail:
    """What the chain alone cannot show, the anchors written out before do."""

    pytestmark = superuser_tampering

    def test_a_rewritten_and_rehashed_tail_is_caught_at_the_first_anchor_after_the_change(self, cast, anchor_file):
        early = record(4)
        anchor_audit_head()
        changed = record(4)[1]
        anchor_audit_head()
        record(2)
        anchor_audit_head()
        later_anchor = anchors_in(anchor_file)[1]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=changed.seq).update(data='{"amount":"0.00","n":1}')
            rehash_from(changed.seq)
        assert verify_chain().ok, "rehashed, the chain is consistent in itself"
        out = io.StringIO()
        with pytest.raises(CommandError, match=f"breaks at seq {later_anchor['seq']} \\(anchor\\)"):
            call_command("verify_audit", "--anchor", str(anchor_file), stdout=out)
        report = orjson.loads(out.getvalue())
        assert report["broken_seq"] == later_anchor["seq"] > early[-1].seq
        assert report["anchor"] == {"seq": later_anchor["seq"], "hash": later_anchor["hash"]}

    def test_a_truncated_tail_with_the_head_moved_back_is_caught(self, cast, anchor_file):
        kept = record(5)[-1]
        removed = record(3)
        anchor_audit_head()
        with triggers_disabled():
            AuditEvent.objects.filter(seq__gt=kept.seq).delete()
            AuditChainHead.objects.filter(pk=1).update(seq=kept.seq, hash=kept.hash)
        assert verify_chain().ok, "the shortened chain is consistent in itself"
        out = io.StringIO()
        with pytest.raises(CommandError, match="anchor_missing"):
            call_command("verify_audit", "--anchor", str(anchor_file), stdout=out)
        report = orjson.loads(out.getvalue())
        assert report["broken_seq"] == removed[0].seq == kept.seq + 1
        assert report["anchor"]["seq"] == removed[-1].seq
