"""Refused calls cannot flood the trail: unauthenticated and bad-token calls are written as one `auth.failed` event
per client address and minute, with the count, once the minute is over (audit.access)."""

import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import orjson
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from audit.access import flush_access_failures
from audit.models import AccessFailureTally, AuditEvent

pytestmark = pytest.mark.django_db
ACTIONS = "/api/v1/actions/"
NOON = datetime(2026, 12, 6, 12, 0, 10, tzinfo=UTC)


def failed_events() -> list[dict]:
    return [orjson.loads(e.data) for e in AuditEvent.objects.filter(kind="auth.failed").order_by("seq")]


def at(moment: datetime):  # type: ignore[no-untyped-def]
    """Every clock reading (the count's minute included) says `moment`."""
    return mock.patch("django.utils.timezone.now", return_value=moment)


def test_200_anonymous_calls_in_a_minute_write_one_event_with_their_count(cast):
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    before = AuditEvent.objects.count()

    with at(NOON):
        for _ in range(200):
            assert client.get(ACTIONS).status_code == 401
    assert AuditEvent.objects.count() == before, "nothing is appended while the minute is open"

    assert flush_access_failures(now=NOON + timedelta(minutes=2)) == 1
    assert failed_events() == [
        {
            "address": "203.0.113.7",
            "minute": "2026-12-06T12:00:00+00:00",
            "count": 200,
            "method": "GET",
            "path": ACTIONS,
            "reason": "Authentication credentials were not provided.",
        }
    ]
    assert not AccessFailureTally.objects.exists()
    assert flush_access_failures(now=NOON + timedelta(minutes=3)) == 0, "each count is written once"


def test_bad_tokens_and_missing_ones_from_one_address_count_together_and_other_addresses_apart(cast):
    with at(NOON):
        APIClient(REMOTE_ADDR="203.0.113.7").get(ACTIONS)
        APIClient(REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Token " + "x" * 64).get(ACTIONS)
        APIClient(REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION="Token nonsense").post(ACTIONS, {})

    flush_access_failures(now=NOON + timedelta(minutes=2))

    counts = {event["address"]: event["count"] for event in failed_events()}
    assert counts == {"203.0.113.7": 2, "198.51.100.1": 1}


def test_a_forged_x_forwarded_for_does_not_give_each_call_an_address_of_its_own(cast):
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0
    with at(NOON):
        for n in range(5):
            APIClient(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}").get(ACTIONS)

    flush_access_failures(now=NOON + timedelta(minutes=2))

    assert [(e["address"], e["count"]) for e in failed_events()] == [("203.0.113.7", 5)]


def test_each_minute_gets_its_own_event_and_the_next_refusal_writes_the_closed_ones(cast):
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    with at(NOON):
        client.get(ACTIONS)
        client.get(ACTIONS)
    with at(NOON + timedelta(minutes=1)):
        client.get(ACTIONS)
    assert failed_events() == [], "the grace minute: 12:00 may still be counting"

    with at(NOON + timedelta(minutes=2)):
        client.get(ACTIONS)

    assert [(e["minute"], e["count"]) for e in failed_events()] == [("2026-12-06T12:00:00+00:00", 2)]
    flush_access_failures(now=NOON + timedelta(minutes=5))
    assert [e["count"] for e in failed_events()] == [2, 1, 1]


def test_beat_writes_the_counts_every_minute():
    assert settings.CELERY_BEAT_SCHEDULE["flush-access-failures"] == {
        "task": "audit.tasks.flush_access_failures",
        "schedule": 60.0,
    }


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (several connections at once)")
@pytest.mark.django_db(transaction=True)
def test_concurrent_refusals_from_eight_connections_land_in_one_count(cast):
    start = threading.Barrier(8)

    def refuse() -> None:
        start.wait()
        try:
            client = APIClient(REMOTE_ADDR="203.0.113.9")
            for _ in range(25):
                client.get(ACTIONS)
        finally:
            connection.close()

    threads = [threading.Thread(target=refuse) for _ in range(8)]
    with at(NOON):  # patched once for every thread: patching in each would race to restore the real clock
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    flush_access_failures(now=NOON + timedelta(minutes=2))
    assert [(e["address"], e["count"]) for e in failed_events()] == [("203.0.113.9", 200)]
