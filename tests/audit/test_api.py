import pytest
from django.db import transaction

from audit.models import AuditEvent
from audit.services import link_rollback, record_event
from tests.audit.conftest import head, record

EVENTS = "/api/v1/audit/events/"
VERIFY = "/api/v1/audit/verify/"
READERS = ["audrey", "alice", "vera", "carl", "ines", "paula", "lena", "eddie", "lex"]


@pytest.mark.parametrize("path", [EVENTS, VERIFY])
def test_an_anonymous_caller_gets_401(cast, client_for, path):
    response = client_for(None).get(path)
    assert response.status_code == 401


@pytest.mark.parametrize("username", ["shop", "nobody"])
@pytest.mark.parametrize("path", [EVENTS, VERIFY])
def test_integrators_and_people_without_a_role_get_403(cast, client_for, path, username):
    response = client_for(getattr(cast, username)).get(path)
    assert response.status_code == 403
    assert AuditEvent.objects.filter(kind="auth.forbidden", actor=username).exists(), "the refusal is audited"


@pytest.mark.parametrize("username", READERS)
def test_the_auditor_and_the_signing_and_reviewing_roles_read_the_trail(cast, client_for, username):
    record(1)
    client = client_for(getattr(cast, username))
    listing = client.get(EVENTS)
    assert listing.status_code == 200
    assert listing.json()["count"] == AuditEvent.objects.count()
    assert client.get(VERIFY).json() == {"ok": True, "events": AuditEvent.objects.count(), "head": head()[1]}


def test_an_event_carries_the_contract_fields_with_its_data_as_an_object(cast, client_for):
    with transaction.atomic():
        event = record_event(
            "rollback.signoff", actor="vera", action_id=5, rollback_id=8, data={"decision": "approve", "amount": 2}
        )
    body = client_for(cast.audrey).get(EVENTS, {"after_seq": event.seq - 1}).json()
    assert set(body) == {"count", "next", "previous", "results"}
    [shown] = body["results"]
    assert shown == {
        "seq": event.seq,
        "at": shown["at"],
        "actor": "vera",
        "kind": "rollback.signoff",
        "action": 5,
        "rollback": 8,
        "data": {"decision": "approve", "amount": 2},
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }
    assert shown["at"].endswith("Z") or shown["at"].endswith("+00:00")


def test_after_seq_pages_forward_in_seq_order(cast, client_for):
    events = record(5)
    body = client_for(cast.audrey).get(EVENTS, {"after_seq": events[1].seq, "limit": 2}).json()
    assert [event["seq"] for event in body["results"]] == [events[2].seq, events[3].seq]
    assert body["count"] == 3
    assert body["next"] is not None


def test_kind_filters_exactly_or_by_a_dotted_prefix(cast, client_for):
    start = head()[0]
    record(1, kind="rollback.step.reversed")
    record(1, kind="rollback.step.failed")
    record(1, kind="rollback.stepped")
    client = client_for(cast.audrey)
    exact = client.get(EVENTS, {"kind": "rollback.step.failed", "after_seq": start}).json()["results"]
    prefix = client.get(EVENTS, {"kind": "rollback.step.", "after_seq": start}).json()["results"]
    assert [event["kind"] for event in exact] == ["rollback.step.failed"]
    assert [event["kind"] for event in prefix] == ["rollback.step.reversed", "rollback.step.failed"]


@pytest.fixture
def linked_trail(cast):
    """Actions 101 and 102 were recorded; rollback 7 covered both, rollback 8 covered 102 only."""
    recorded_101 = record(1, action_id=101)[0]
    recorded_102 = record(1, action_id=102)[0]
    unrelated = record(1, action_id=103)[0]
    with transaction.atomic():
        link_rollback(7, [101, 102])
        link_rollback(8, [102])
    requested_7 = record(1, kind="rollback.requested", actor="carl", rollback_id=7)[0]
    reversed_101 = record(1, kind="action.state_changed", actor="system", action_id=101, rollback_id=7)[0]
    requested_8 = record(1, kind="rollback.requested", actor="ines", rollback_id=8)[0]
    return {
        "recorded_101": recorded_101.seq,
        "recorded_102": recorded_102.seq,
        "unrelated": unrelated.seq,
        "requested_7": requested_7.seq,
        "reversed_101": reversed_101.seq,
        "requested_8": requested_8.seq,
    }


def seqs(client, **params) -> list[int]:
    response = client.get(EVENTS, params)
    assert response.status_code == 200, response.json()
    return [event["seq"] for event in response.json()["results"]]


def test_an_actions_events_include_those_of_every_rollback_that_touched_it(cast, client_for, linked_trail):
    client = client_for(cast.audrey)
    assert seqs(client, action=101) == [
        linked_trail["recorded_101"],
        linked_trail["requested_7"],
        linked_trail["reversed_101"],
    ]
    assert seqs(client, action=102) == [
        linked_trail["recorded_102"],
        linked_trail["requested_7"],
        linked_trail["reversed_101"],
        linked_trail["requested_8"],
    ]


def test_a_rollbacks_events_include_its_actions_original_records(cast, client_for, linked_trail):
    client = client_for(cast.audrey)
    assert seqs(client, rollback=7) == [
        linked_trail["recorded_101"],
        linked_trail["recorded_102"],
        linked_trail["requested_7"],
        linked_trail["reversed_101"],
    ]
    assert seqs(client, rollback=8) == [linked_trail["recorded_102"], linked_trail["requested_8"]]
    assert seqs(client, rollback=8, kind="rollback.requested") == [linked_trail["requested_8"]]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after_seq": "-1"}, "after_seq"),
        ({"after_seq": "soon"}, "after_seq"),
        ({"action": "abc"}, "action"),
        ({"action": "0"}, "action"),
        ({"action": "1.5"}, "action"),
        ({"rollback": str(2**64)}, "rollback"),
        ({"kind": "k" * 65}, "kind"),
    ],
)
def test_bad_filters_get_400_with_field_errors(cast, client_for, params, field):
    response = client_for(cast.audrey).get(EVENTS, params)
    assert response.status_code == 400
    assert field in response.json()


def test_empty_filter_values_filter_nothing(cast, client_for):
    record(3)
    client = client_for(cast.audrey)
    response = client.get(EVENTS, {"action": "", "rollback": "", "kind": "", "after_seq": ""})
    assert response.status_code == 200
    assert response.json() == client.get(EVENTS).json()
    assert response.json()["count"] >= 3


def test_the_schema_documents_the_audit_endpoints(cast, client_for):
    response = client_for(cast.audrey).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"after_seq", "action", "rollback", "kind"} <= {
        parameter["name"] for parameter in paths["/api/v1/audit/events/"]["get"]["parameters"]
    }
    assert "/api/v1/audit/verify/" in paths
