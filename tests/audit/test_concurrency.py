import threading

import pytest
from django.db import connection, transaction

from audit.models import AuditEvent
from audit.services import EventSpec, record_event, record_events
from audit.verification import verify_chain
from tests.audit.conftest import head, postgres_only

pytestmark = [*postgres_only, pytest.mark.django_db(transaction=True)]

WRITERS = 8
TRANSACTIONS_EACH = 30
ROUNDS = 3


def write(writer: int, start: threading.Barrier, errors: list[BaseException]) -> None:
    """One writer on its own connection: single events and small batches, as services write them."""
    try:
        start.wait()
        for number in range(TRANSACTIONS_EACH):
            with transaction.atomic():
                if number % 3:
                    record_event("action.recorded", actor=f"writer-{writer}", data={"n": number})
                else:
                    record_events(
                        [
                            EventSpec("rollback.step.attempt", f"writer-{writer}", data={"n": number, "i": i})
                            for i in (1, 2)
                        ]
                    )
    except BaseException as error:
        errors.append(error)
    finally:
        connection.close()


def test_eight_concurrent_writers_leave_one_linear_chain(cast):
    per_round = WRITERS * TRANSACTIONS_EACH * 4 // 3  # two events in every third transaction
    for _ in range(ROUNDS):
        seq_before = head()[0]
        start, errors = threading.Barrier(WRITERS), []
        threads = [threading.Thread(target=write, args=(writer, start, errors)) for writer in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors
        events = list(AuditEvent.objects.filter(seq__gt=seq_before).order_by("seq").values_list("seq", "prev_hash"))
        assert [seq for seq, _ in events] == list(range(seq_before + 1, seq_before + per_round + 1)), "no gap"
        assert len({prev_hash for _, prev_hash in events}) == per_round, "no two events follow the same one: no fork"
        assert head()[0] == seq_before + per_round
        verdict = verify_chain()
        assert verdict.ok, verdict.as_dict()
