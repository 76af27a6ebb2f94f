"""The trail shows no more than the objects do: a reader who is not an auditor sees the events of the actions and
rollbacks they may see (and events tied to neither), in the API (the console: tests/console/test_trail.py).
ines files an incident over a refund; carl (customer service) sees the refund but not the incident."""

import pytest

from audit.models import AuditEvent
from audit.services import record_standalone_event
from rollbacks.selectors import rollbacks_visible_to
from rollbacks.services import request_rollback
from tests.console.conftest import record

EVENTS = "/api/v1/audit/events/"
SECRET_REASON = "payee account compromised, do not tell the customer"

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(cast):  # type: ignore[no-untyped-def]
    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason=SECRET_REASON, actions=[refund.pk])
    assert not rollbacks_visible_to(cast.carl).filter(pk=rollback.pk).exists()
    return rollback


def _seen(client, **params):  # type: ignore[no-untyped-def]
    response = client.get(EVENTS, {"limit": 1000, **params})
    assert response.status_code == 200
    return response.json()["results"]


def test_a_reader_who_may_not_see_a_rollback_gets_none_of_its_events_by_any_filter(cast, client_for, incident):
    client = client_for(cast.carl)
    [action_id] = incident.plan["action_ids"]

    for params in ({}, {"rollback": incident.pk}, {"action": action_id}, {"kind": "rollback."}):
        assert [e for e in _seen(client, **params) if e["rollback"] == incident.pk] == [], params
    by_rollback = _seen(client, rollback=incident.pk)
    assert [e["kind"] for e in by_rollback] == ["action.recorded"], "the action's own record is his to see"
    assert SECRET_REASON not in client.get(EVENTS, {"rollback": incident.pk}).content.decode()


def test_the_requester_the_signing_role_and_the_auditor_see_the_rollbacks_events(cast, client_for, incident):
    for reader in (cast.ines, cast.audrey):
        kinds = [e["kind"] for e in _seen(client_for(reader), rollback=incident.pk)]
        assert "rollback.requested" in kinds, reader.username


def test_the_count_of_a_scoped_listing_counts_only_what_the_reader_sees(cast, client_for, incident):
    hidden = AuditEvent.objects.filter(rollback_id=incident.pk).count()
    assert hidden > 0
    assert client_for(cast.audrey).get(EVENTS).json()["count"] == AuditEvent.objects.count()
    assert client_for(cast.carl).get(EVENTS).json()["count"] == AuditEvent.objects.count() - hidden


def test_events_tied_to_neither_an_action_nor_a_rollback_are_shown_to_every_reader(cast, client_for, incident):
    event = record_standalone_event("auth.forbidden", actor="nobody", data={"path": "/x"})
    assert event.seq in [e["seq"] for e in _seen(client_for(cast.carl), kind="auth.forbidden")]
