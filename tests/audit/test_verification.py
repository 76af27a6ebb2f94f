import io

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import verification
from audit.models import AuditChainHead, AuditEvent
from audit.verification import verify_chain
from tests.audit.conftest import AWKWARD_DATA, head, record, superuser_tampering, triggers_disabled


def test_an_untouched_trail_verifies_with_its_head_and_every_event_counted(cast):
    record(5, data=AWKWARD_DATA)
    record(3, kind="rollback.requested", actor="carl", rollback_id=4)
    report = verify_chain().as_dict()
    assert report == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}


def test_verify_audit_prints_the_report_and_succeeds_on_a_whole_chain(cast):
    record(2)
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert orjson.loads(out.getvalue()) == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}


class TestASuperuserWithTriggersDisabled:
    pytestmark = superuser_tampering

    def test_changing_an_event_is_named_by_its_seq(self, cast):
        target = record(6)[2]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=target.seq).update(data='{"n":2,"amount":"0.00"}')
        report = verify_chain().as_dict()
        assert report == {"ok": False, "events": AuditEvent.objects.count(), "broken_seq": target.seq, "reason": "hash"}

    def test_verify_audit_names_the_changed_seq_and_exits_non_zero(self, cast):
        target = record(4)[1]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=target.seq).update(actor="mallory")
        out = io.StringIO()
        with pytest.raises(CommandError, match=f"breaks at seq {target.seq}"):
            call_command("verify_audit", stdout=out)
        assert orjson.loads(out.getvalue())["broken_seq"] == target.seq

    def test_deleting_an_event_names_the_missing_seq(self, cast):
        target = record(5)[3]
        with triggers_disabled():
            AuditEvent.objects.filter(seq=target.seq).delete()
        assert verify_chain().as_dict()["broken_seq"] == target.seq
        assert verify_chain().reason == "missing"

    def test_rewiring_an_event_to_skip_the_one_before_is_named(self, cast):
        events = record(5)
        with triggers_disabled():
            AuditEvent.objects.filter(seq=events[3].seq).update(prev_hash=events[1].hash)
        verdict = verify_chain()
        assert (verdict.broken_seq, verdict.reason) == (events[3].seq, "prev_hash")

    def test_deleting_the_newest_events_without_moving_the_head_is_named(self, cast):
        events = record(5)
        with triggers_disabled():
            AuditEvent.objects.filter(seq__gte=events[3].seq).delete()
        verdict = verify_chain()
        assert (verdict.broken_seq, verdict.reason) == (events[3].seq, "missing")

    def test_an_event_written_around_the_head_is_named(self, cast):
        events = record(3)
        with triggers_disabled():
            AuditChainHead.objects.filter(pk=1).update(seq=events[1].seq, hash=events[1].hash)
        verdict = verify_chain()
        assert (verdict.broken_seq, verdict.reason) == (events[2].seq, "beyond_head")

    def test_a_head_that_names_another_hash_is_named(self, cast):
        events = record(3)
        with triggers_disabled():
            AuditChainHead.objects.filter(pk=1).update(hash="f" * 64)
        verdict = verify_chain()
        assert (verdict.broken_seq, verdict.reason) == (events[2].seq, "head")


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the parallel scan shares a PostgreSQL snapshot")
@pytest.mark.django_db(transaction=True)
class TestTheScanSplitOverProcesses:
    """The same answers when the trail is split by seq over worker processes that import one snapshot."""

    @pytest.fixture(autouse=True)
    def _split_even_short_trails(self, monkeypatch):
        monkeypatch.setattr(verification, "PARALLEL_FROM", 1)

    def test_a_whole_trail_verifies_in_three_parts(self, cast):
        record(40, data=AWKWARD_DATA)
        assert verify_chain(processes=3).as_dict() == {
            "ok": True,
            "events": AuditEvent.objects.count(),
            "head": head()[1],
        }

    @pytest.mark.database_owner
    def test_a_change_in_any_part_is_named(self, cast):
        events = record(60)
        for target in (events[5], events[30], events[55]):  # one in each of three parts, fixed up after
            with transaction.atomic(), triggers_disabled():  # committed, so the workers' snapshot sees it
                AuditEvent.objects.filter(seq=target.seq).update(kind="action.forged")
            verdict = verify_chain(processes=3)
            assert (verdict.ok, verdict.broken_seq, verdict.reason, verdict.events) == (
                False,
                target.seq,
                "hash",
                AuditEvent.objects.count(),
            )
            with transaction.atomic(), triggers_disabled():
                AuditEvent.objects.filter(seq=target.seq).update(kind=target.kind)
        assert verify_chain(processes=3).ok

    @pytest.mark.database_owner
    def test_a_missing_event_at_a_part_boundary_is_named(self, cast):
        record(40)
        top = head()[0]
        boundary = top // 2 + 1  # the first seq of the second of two parts
        with transaction.atomic(), triggers_disabled():
            AuditEvent.objects.filter(seq=boundary).delete()
        verdict = verify_chain(processes=2)
        assert (verdict.broken_seq, verdict.reason) == (boundary, "missing")
