"""Incremental verification: a verified prefix is checkpointed (and the checkpoint anchored), so the next check
reads only what is new; `verify_audit --full` still recomputes everything."""

import io

import orjson
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.models import AuditCheckpoint, AuditEvent
from audit.services import record_checkpoint
from audit.tasks import verify_audit_trail
from tests.audit.conftest import head, record, rehash_from, superuser_tampering, triggers_disabled


def verify(*arguments: str) -> tuple[dict, bool]:
    out = io.StringIO()
    try:
        call_command("verify_audit", *arguments, stdout=out)
    except CommandError:
        return orjson.loads(out.getvalue()), False
    return orjson.loads(out.getvalue()), True


def anchor_lines() -> list[dict]:
    with open(settings.AUDIT_ANCHOR_PATH, "rb") as anchors:
        return [orjson.loads(line) for line in anchors.read().splitlines()]


def test_the_first_verification_reads_everything_and_checkpoints_the_head_as_an_anchor(cast):
    record(4)
    report, ok = verify()
    assert ok and report == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seq, checkpoint.hash, checkpoint.full) == (*head(), True)
    assert anchor_lines() == [{"seq": head()[0], "hash": head()[1], "at": anchor_lines()[0]["at"], "checkpoint": True}]


def test_the_next_verification_reads_only_what_was_appended_since_the_checkpoint(cast):
    record(4)
    verify()
    start = head()[0]
    record(3)
    report, ok = verify()
    assert ok
    assert report == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1], "since_checkpoint": start}
    assert AuditCheckpoint.objects.latest().seq == head()[0]
    assert not AuditCheckpoint.objects.latest().full


@superuser_tampering[0]
@superuser_tampering[1]
@superuser_tampering[2]
def test_a_change_after_the_checkpoint_is_caught_by_the_incremental_check(cast):
    record(3)
    verify()
    record(3)
    changed = AuditEvent.objects.order_by("-seq")[1]
    with triggers_disabled():
        AuditEvent.objects.filter(seq=changed.seq).update(actor="mallory")
    report, ok = verify()
    assert not ok
    assert (report["broken_seq"], report["reason"]) == (changed.seq, "hash")
    assert report["events"] == AuditEvent.objects.count()


class TestAPrefixRewrittenBehindTheCheckpoint:
    pytestmark = superuser_tampering

    def test_a_prefix_rewritten_and_rehashed_through_the_checkpoint_is_caught_at_the_checkpoint(self, cast):
        record(4)
        verify()
        checkpoint = AuditCheckpoint.objects.latest()
        record(2)
        with triggers_disabled():
            AuditEvent.objects.filter(seq=checkpoint.seq - 2).update(data='{"n":99}')
            rehash_from(checkpoint.seq - 2)
        report, ok = verify()
        assert not ok
        assert (report["broken_seq"], report["reason"]) == (checkpoint.seq, "checkpoint")

    def test_a_change_inside_the_prefix_that_spares_the_checkpoint_is_found_by_full(self, cast):
        record(4)
        verify()
        changed = AuditEvent.objects.order_by("-seq")[2]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=changed.seq).update(actor="mallory")
        assert verify()[1], "the incremental check trusts the verified prefix"
        report, ok = verify("--full")
        assert not ok
        assert (report["broken_seq"], report["reason"]) == (changed.seq, "hash")

    def test_a_forged_checkpoint_is_caught_by_the_anchor_written_with_the_real_one(self, cast):
        record(4)
        verify()
        real = AuditCheckpoint.objects.latest()
        with triggers_disabled():
            AuditEvent.objects.filter(seq=real.seq - 1).update(data='{"n":99}')
            rehash_from(real.seq - 1)
        # The superuser also forges a checkpoint for the rewritten chain, without writing to the anchor file.
        AuditCheckpoint.objects.create(seq=real.seq, hash=head()[1], full=True)
        assert verify()[1], "against the forged checkpoint alone the rewrite holds"
        report, ok = verify("--anchor", settings.AUDIT_ANCHOR_PATH)
        assert not ok
        assert (report["broken_seq"], report["reason"]) == (real.seq, "anchor")


def test_full_recomputes_everything_and_checkpoints_again(cast):
    record(3)
    verify()
    record(1)
    report, ok = verify("--full")
    assert ok and "since_checkpoint" not in report
    assert AuditCheckpoint.objects.latest().full
    assert AuditCheckpoint.objects.latest().seq == head()[0]


def test_an_unchanged_trail_adds_no_checkpoint(cast):
    record(2)
    verify()
    verify()
    verify("--full")
    assert AuditCheckpoint.objects.count() == 1


def test_the_periodic_task_verifies_since_the_checkpoint_every_ten_minutes(cast):
    record(2)
    assert record_checkpoint(*head(), full=True) is not None
    record(2)
    verify_audit_trail.apply()
    assert AuditCheckpoint.objects.latest().seq == head()[0]
    assert settings.CELERY_BEAT_SCHEDULE["verify-audit-since-checkpoint"] == {
        "task": "audit.tasks.verify_audit_trail",
        "schedule": 600.0,
    }


@superuser_tampering[0]
@superuser_tampering[1]
@superuser_tampering[2]
def test_the_periodic_task_logs_a_broken_trail(cast, caplog):
    record(2)
    verify()
    record(2)
    last = head()[0]
    with triggers_disabled():
        AuditEvent.objects.filter(seq=last).update(kind="forged")
    verify_audit_trail.apply()
    assert "the audit trail is broken" in caplog.text


def test_a_verification_that_cannot_write_its_anchor_still_answers_and_keeps_no_checkpoint(cast, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.AUDIT_ANCHOR_PATH = str(blocker / "anchors.jsonl")  # under a file: cannot be created
    record(2)
    report, ok = verify()
    assert ok and report["head"] == head()[1]
    assert not AuditCheckpoint.objects.exists()


def test_choosing_processes_verifies_the_whole_trail(cast):
    record(2)
    verify()
    record(1)
    report, ok = verify("--processes", "1")
    assert ok and "since_checkpoint" not in report
    assert AuditCheckpoint.objects.latest().full
