"""Two requests recording the same external id at the same moment: one records it, the other gets a replay
(or a conflict when the bodies differ), never a 500 and never two actions."""

import threading

import pytest
from django.db import connection, connections

from actions.models import Action
from actions.services import record_action
from rollback_console.errors import Conflict
from tests.actions.conftest import action_body

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks and real concurrency"),
    pytest.mark.django_db(transaction=True),
]


def _race(cast, bodies):
    barrier = threading.Barrier(len(bodies))
    outcomes: list[object] = [None] * len(bodies)

    def post(index, body):
        try:
            barrier.wait()
            outcomes[index] = record_action(cast.shop, body)[1]
        except Exception as exc:  # the outcome under test, whatever it is
            outcomes[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i, body)) for i, body in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_the_same_body_posted_at_once_is_recorded_once_and_replayed_to_the_others(cast):
    body = action_body()

    outcomes = _race(cast, [body] * 4)

    assert sorted(outcomes, key=str) == [False, False, False, True]
    assert Action.objects.filter(external_id=body["external_id"]).count() == 1


def test_different_bodies_posted_at_once_record_one_and_refuse_the_others(cast):
    body = action_body()

    outcomes = _race(cast, [body, {**body, "subject": "customer:2"}, {**body, "subject": "customer:3"}])

    assert outcomes.count(True) == 1
    assert sum(isinstance(outcome, Conflict) for outcome in outcomes) == 2
    assert Action.objects.filter(external_id=body["external_id"]).count() == 1
