"""The one-round-trip append (audit_append, migration 0004) writes the chain audit.chain writes, or nothing."""

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test.utils import CaptureQueriesContext

from audit import services
from audit.models import AuditEvent
from audit.services import EventSpec, record_events
from audit.verification import verify_chain
from tests.audit.conftest import AWKWARD_DATA, head, postgres_only

pytestmark = [*postgres_only, pytest.mark.django_db]


def test_a_few_events_are_appended_in_one_statement_and_the_chain_verifies(cast):
    specs = [
        EventSpec("action.recorded", 'shop "quoted" ☃', action_id=7, data=AWKWARD_DATA),
        EventSpec("rollback.step.reversed", "system", action_id=None, rollback_id=2**40, data={"n": [1, 2.5, None]}),
        EventSpec("weird\tkind\u0001", "\\back", data={}),
    ]
    seq_before = head()[0]

    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        written = record_events(specs)

    assert len(captured) == 1 and "audit_append" in captured[0]["sql"]
    stored = list(AuditEvent.objects.filter(seq__gt=seq_before).order_by("seq"))
    assert [(e.seq, e.prev_hash, e.hash, e.data) for e in stored] == [
        (e.seq, e.prev_hash, e.hash, e.data) for e in written
    ]
    assert head() == (written[-1].seq, written[-1].hash)
    verdict = verify_chain()
    assert verdict.ok, verdict.as_dict()


def test_more_than_twenty_events_take_the_copy_and_the_chain_still_verifies(cast):
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        record_events([EventSpec("action.recorded", "shop", data={"i": i}) for i in range(21)])

    assert len(captured) == 3
    assert verify_chain().ok


def test_if_the_database_hashed_differently_nothing_is_recorded(cast, monkeypatch):
    seq_before = head()
    monkeypatch.setattr(services, "event_hash", lambda *parts: "f" * 64)

    with pytest.raises(RuntimeError, match="hashed an event differently"), transaction.atomic():
        record_events([EventSpec("action.recorded", "shop", data={"n": 1})])

    assert head() == seq_before
    assert not AuditEvent.objects.filter(seq__gt=seq_before[0]).exists()


def test_the_function_still_cannot_move_the_head_backwards(cast):
    with transaction.atomic():
        record_events([EventSpec("action.recorded", "shop", data={"n": 1})])

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditchainhead SET seq = seq - 1 WHERE id = 1")
