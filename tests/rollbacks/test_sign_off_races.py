"""Races on PostgreSQL with real threads, each with its own connection: the rollback's row lock must make every
outcome one that some serial order would give."""

import queue
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.db import connection

from actions.models import Action, ActionState
from audit.models import AuditEvent
from rollback_console.errors import DomainError
from rollbacks.models import Rollback, SignOff
from rollbacks.services import cancel_rollback, request_rollback, sign_off
from tests.rollbacks.requesting import capturing_queue, colleague, record

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks and real concurrency need PostgreSQL"),
    pytest.mark.django_db(transaction=True),
]
ROUNDS = 100


class Racers:
    """N threads, each with its own database connection kept across rounds (opening one per round would cost
    more than the race). Each round hands every thread one call, releases them together, and collects what
    each returned, or the exception it raised. Leaving the block closes the threads' connections."""

    def __init__(self, count: int) -> None:
        self.inboxes: list[queue.Queue] = [queue.Queue() for _ in range(count)]
        self.results: queue.Queue = queue.Queue()
        self.barrier = threading.Barrier(count)
        self.threads = [threading.Thread(target=self._serve, args=(i,)) for i in range(count)]

    def __enter__(self) -> "Racers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for thread in self.threads:
            thread.join(timeout=30)

    def _serve(self, index: int) -> None:
        try:
            while (call := self.inboxes[index].get()) is not None:
                try:
                    self.barrier.wait(timeout=30)
                    result: Any = call()
                except BaseException as error:  # reported to the test, which asserts on it
                    result = error
                self.results.put((index, result))
        finally:
            connection.close()

    def race(self, *calls: Callable[[], Any]) -> list[Any]:
        for inbox, call in zip(self.inboxes, calls, strict=True):
            inbox.put(call)
        collected = dict(self.results.get(timeout=60) for _ in calls)
        return [collected[i] for i in range(len(calls))]


def test_eight_signers_racing_authorize_once_and_queue_execution_once(cast):
    owners = [colleague(f"owner_{i}", "policy_owner") for i in range(4)]
    counsels = [colleague(f"counsel_{i}", "legal") for i in range(4)]
    signers = owners + counsels
    action = record(cast.shop)

    with capturing_queue() as queued, Racers(len(signers)) as racers:
        for _ in range(ROUNDS):
            rollback = request_rollback(
                requester=cast.paula, trigger="policy_reversal", reason="race", actions=[action.pk]
            )
            results = racers.race(
                *(lambda s=signer, pk=rollback.pk: sign_off(pk, signer=s, decision="approve") for signer in signers)
            )

            unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
            assert not unexpected
            accepted = [r for r in results if isinstance(r, Rollback)]
            assert len(accepted) == 2, results  # one policy owner, one legal counsel
            assert all(r.status_code == 409 for r in results if isinstance(r, DomainError))
            assert Rollback.objects.get(pk=rollback.pk).state == "authorized"
            roles = sorted(SignOff.objects.filter(rollback=rollback).values_list("role", flat=True))
            assert roles == ["legal", "policy_owner"]
            assert AuditEvent.objects.filter(kind="rollback.authorized", rollback_id=rollback.pk).count() == 1
            assert queued.count(rollback.pk) == 1
            cancel_rollback(rollback.pk, actor=cast.paula)  # frees the action for the next round

    assert len(queued) == ROUNDS


def test_a_cancel_racing_the_last_signoff_leaves_one_consistent_outcome(cast):
    action = record(cast.shop)
    outcomes = set()

    with capturing_queue() as queued, Racers(2) as racers:
        for _ in range(ROUNDS):
            rollback = request_rollback(
                requester=cast.shop, trigger="customer_request", reason="race", actions=[action.pk]
            )
            signed, cancelled = racers.race(
                lambda pk=rollback.pk: sign_off(pk, signer=cast.carl, decision="approve"),
                lambda pk=rollback.pk: cancel_rollback(pk, actor=cast.shop),
            )

            assert isinstance(cancelled, Rollback), cancelled  # cancel is allowed before and after authorization
            final = Rollback.objects.get(pk=rollback.pk)
            assert final.state == "cancelled"
            if isinstance(signed, Rollback):
                outcomes.add("authorized, then cancelled")
                assert final.authorized_at is not None
                assert queued.count(rollback.pk) == 1
                assert SignOff.objects.filter(rollback=rollback).count() == 1
            else:
                outcomes.add("cancelled, sign-off refused")
                assert isinstance(signed, DomainError) and signed.status_code == 409, signed
                assert final.authorized_at is None
                assert rollback.pk not in queued
                assert not SignOff.objects.filter(rollback=rollback).exists()
            assert AuditEvent.objects.filter(kind="rollback.cancelled", rollback_id=rollback.pk).count() == 1
            assert Action.objects.get(pk=action.pk).state == ActionState.EXECUTED

    # which orders occur is the scheduler's choice; each one that did was checked above
    assert outcomes <= {"authorized, then cancelled", "cancelled, sign-off refused"}


def test_retries_racing_with_one_idempotency_key_create_one_rollback_and_get_one_answer(cast):
    from rest_framework.test import APIClient

    from rollbacks.models import IdempotencyRecord

    action = record(cast.shop)
    body = {"trigger": "customer_request", "reason": "retried", "actions": [action.pk]}

    def post(key):
        client = APIClient()
        client.force_authenticate(cast.carl)
        response = client.post("/api/v1/rollbacks/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
        return response.status_code, response.json()

    # Fewer rounds than the sign-off races: each one runs four whole requests, serialized by the audit chain.
    rounds = 30
    with Racers(4) as racers:
        for round_ in range(rounds):
            key = f"race-{round_}"
            answers = racers.race(*(lambda k=key: post(k) for _ in range(4)))

            assert all(not isinstance(a, BaseException) for a in answers), answers
            assert {status for status, _ in answers} == {201}
            assert len({orjson.dumps(data, option=orjson.OPT_SORT_KEYS) for _, data in answers}) == 1
            assert IdempotencyRecord.objects.filter(key=key).count() == 1

    assert Rollback.objects.filter(reason="retried").count() == rounds
