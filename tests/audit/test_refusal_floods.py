"""A refused request writes one event however many actions it names: a caller without the role cannot grow the
trail by the length of its list."""

import orjson
import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from rollback_console.errors import Forbidden
from rollbacks.services import REFUSAL_IDS_KEPT, request_rollback
from tests.console.conftest import record

pytestmark = pytest.mark.django_db


def test_a_refused_request_naming_a_thousand_ids_writes_one_event_with_100_kept_and_the_count(cast):
    refunds = [record(cast.shop).pk for _ in range(3)]
    named = [*refunds, *range(10**6, 10**6 + 997)]
    before = AuditEvent.objects.count()

    with pytest.raises(Forbidden):
        request_rollback(requester=cast.nobody, trigger="incident", reason="x", actions=named)

    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.order_by("-seq").first()
    assert (event.kind, event.actor, event.action_id, event.rollback_id) == ("rollback.refused", "nobody", None, None)
    data = orjson.loads(event.data)
    assert data["actions"] == refunds, "the named ids that exist, among the first 100"
    assert data["actions_named"] == 1000


def test_the_ids_kept_are_capped_at_100_and_repeats_count_once(cast):
    refunds = [record(cast.shop).pk for _ in range(REFUSAL_IDS_KEPT + 5)]

    with pytest.raises(Forbidden):
        request_rollback(requester=cast.carl, trigger="incident", reason="x", actions=refunds + refunds)

    data = orjson.loads(AuditEvent.objects.filter(kind="rollback.refused").order_by("-seq").first().data)
    assert data["actions"] == refunds[:REFUSAL_IDS_KEPT]
    assert data["actions_named"] == REFUSAL_IDS_KEPT + 5


def test_a_token_without_a_role_posting_an_incident_of_1000_ids_writes_one_event_per_call(cast):
    client = APIClient()
    client.force_authenticate(cast.nobody)
    before = AuditEvent.objects.filter(kind="rollback.refused").count()
    body = {"trigger": "incident", "reason": "x", "actions": list(range(1, 1001))}

    for _ in range(2):
        assert client.post("/api/v1/rollbacks/", body, format="json").status_code == 403

    assert AuditEvent.objects.filter(kind="rollback.refused").count() == before + 2
