"""The trail is queryable from either end: an action's lists its original record and every request, sign-off and
refusal about it; a request's lists its actions' original records. Read through GET /api/v1/audit/events/."""

import pytest
from rest_framework.test import APIClient

from rollback_console.errors import Forbidden
from rollbacks.services import request_rollback, sign_off
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def trail(cast, **filters):
    client = APIClient()
    client.force_authenticate(cast.audrey)
    response = client.get("/api/v1/audit/events/", {**filters, "limit": 500})
    assert response.status_code == 200, response.content
    body = response.json()
    return body["results"] if isinstance(body, dict) else body


def test_the_trail_of_an_action_and_of_its_request_find_each_other(cast):
    refund = record(cast.shop, approved_by="vera")
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    with pytest.raises(Forbidden):
        request_rollback(requester=cast.carl, trigger="reviewer_error", reason="not mine", actions=[refund.pk])
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[refund.pk])
    with pytest.raises(Forbidden):
        sign_off(rollback.pk, signer=cast.vera, decision="approve")  # she approved it
    sign_off(rollback.pk, signer=cast.victor, decision="approve", comment="confirmed")

    of_action = [(e["kind"], e["actor"]) for e in trail(cast, action=refund.pk)]
    assert of_action[0] == ("action.recorded", "shop")
    for expected in [
        ("rollback.refused", "carl"),
        ("rollback.requested", "bob"),
        ("action.state_changed", "bob"),
        ("rollback.signoff_refused", "vera"),
        ("rollback.signoff", "victor"),
        ("rollback.authorized", "victor"),
    ]:
        assert expected in of_action

    of_downstream = [e["kind"] for e in trail(cast, action=points.pk)]
    assert {"action.recorded", "rollback.requested", "rollback.signoff_refused", "rollback.signoff"} <= set(
        of_downstream
    )

    of_request = trail(cast, rollback=rollback.pk)
    recorded = {e["action"] for e in of_request if e["kind"] == "action.recorded"}
    assert recorded == {refund.pk, points.pk}
    kinds = [e["kind"] for e in of_request]
    assert kinds.index("rollback.requested") < kinds.index("rollback.signoff_refused") < kinds.index("rollback.signoff")
