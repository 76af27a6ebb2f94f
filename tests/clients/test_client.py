"""The integrators' client (clients/python) against a live server: every call it offers, its retries, and what a
caller without permission gets."""

from typing import Any

import httpx
import pytest
from django.db import connection
from rollback_console_client import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RollbackConsole,
    Unauthorized,
)

from actions.models import Action
from rollbacks.models import Rollback
from tests.clients.conftest import refund

# A live server answers from another thread, which sees only committed data: transactional tests, which only the
# PostgreSQL run can empty again (the audit trail's triggers refuse SQLite's flush).
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="transactional tests need PostgreSQL"),
]


class LosesFirstAnswer(httpx.HTTPTransport):
    """Sends every request, but drops the server's first answer as a broken connection would: the client cannot
    tell whether the server acted, so it must be safe to send again."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        response = super().handle_request(request)
        if self.requests == 1:
            response.read()
            raise httpx.ReadError("connection reset by peer", request=request)
        return response


class Counting(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return super().handle_request(request)


def test_an_integrator_records_an_action_and_reads_its_reversibility(console_for: Any, cast: Any) -> None:
    rc = console_for(cast.shop)
    action = rc.record_action(**refund(external_id="agent-7/refund-1"))
    assert action["external_id"] == "agent-7/refund-1"
    assert action["state"] == "executed"
    assert action["reversibility"]["class"] == "full"
    assert action["reversibility"]["window_ends_at"] is not None
    assert rc.get_action(action["id"])["rollbacks"] == []


def test_a_record_whose_answer_was_lost_is_sent_again_and_recorded_once(console_for: Any, cast: Any) -> None:
    transport = LosesFirstAnswer()
    rc = console_for(cast.shop, transport=transport)
    action = rc.record_action(**refund(external_id="agent-7/refund-lost"))
    assert transport.requests == 2
    assert Action.objects.filter(external_id="agent-7/refund-lost").count() == 1
    assert action["id"] == Action.objects.get(external_id="agent-7/refund-lost").pk


def test_the_same_external_id_with_another_body_is_a_conflict_sent_once(console_for: Any, cast: Any) -> None:
    transport = Counting()
    rc = console_for(cast.shop, transport=transport)
    rc.record_action(**refund(external_id="agent-7/refund-2"))
    with pytest.raises(Conflict) as refused:
        rc.record_action(**refund(external_id="agent-7/refund-2", subject="customer:2002"))
    assert refused.value.status == 409
    assert transport.requests == 2  # the conflicting one was not retried


def test_a_batch_is_recorded_in_order_and_a_retry_replays_it_whole(console_for: Any, cast: Any) -> None:
    rc = console_for(cast.shop)
    refunded = rc.action_body(**refund(external_id="agent-8/refund"))
    points = rc.action_body(
        **refund(external_id="agent-8/points", action_type="loyalty.points_grant", caused_by=["agent-8/refund"])
    )
    first = rc.record_actions([refunded, points])
    again = rc.record_actions([refunded, points])
    assert (first["created"], again["created"], again["replayed"]) == (2, 0, 2)
    assert [a["id"] for a in again["actions"]] == [a["id"] for a in first["actions"]]
    assert again["actions"][1]["caused_by"] == ["agent-8/refund"]


def test_a_bad_batch_item_is_named_by_its_index(console_for: Any, cast: Any) -> None:
    rc = console_for(cast.shop)
    good = rc.action_body(**refund())
    bad = rc.action_body(**refund(approved_by="no-such-person"))
    with pytest.raises(InvalidRequest) as refused:
        rc.record_actions([good, bad])
    assert "1" in refused.value.errors["actions"]


def test_an_agent_reads_action_types_and_previews_a_reversal(console_for: Any, cast: Any) -> None:
    rc = console_for(cast.shop)
    refund_type = next(t for t in rc.action_types() if t["name"] == "refund.issue")
    assert refund_type["window"] == "30d"
    assert "executive" in refund_type["summary"]
    action = rc.record_action(**refund())
    preview = rc.preview_reversal(action["id"])
    assert preview["action"] == action["id"]
    assert preview["window_open"] is True
    assert [a["id"] for a in rc.actions(subject="customer:1001")] == [action["id"]]


def test_a_customer_request_sent_twice_with_one_key_files_one_rollback(console_for: Any, cast: Any) -> None:
    rc = console_for(cast.shop)
    action = rc.record_action(**refund())
    first = rc.request_customer_rollback([action["id"]], "the customer asked", idempotency_key="ticket-881")
    again = rc.request_customer_rollback([action["id"]], "the customer asked", idempotency_key="ticket-881")
    assert first == again
    assert Rollback.objects.count() == 1
    rollback = rc.get_rollback(first["id"])
    assert rollback["state"] == "pending_authorization"
    assert rollback["required_signoffs"] == [{"role": "customer_service", "count": 1, "given": 0}]
    assert [r["id"] for r in rc.rollbacks(trigger="customer_request")] == [first["id"]]
    with pytest.raises(Conflict):
        rc.request_customer_rollback([action["id"]], "another reason", idempotency_key="ticket-881")


def test_a_person_without_a_role_is_refused_and_sees_no_data(console_for: Any, cast: Any) -> None:
    action = console_for(cast.shop).record_action(**refund())
    rc = console_for(cast.nobody)
    with pytest.raises(Forbidden):
        rc.action_types()
    with pytest.raises(Forbidden):
        rc.record_action(**refund())
    with pytest.raises(Forbidden):
        rc.preview_reversal(action["id"])


def test_another_integrators_action_is_not_found(console_for: Any, cast: Any) -> None:
    action = console_for(cast.shop).record_action(**refund())
    with pytest.raises(NotFound):
        console_for(cast.other_shop).get_action(action["id"])


def test_a_wrong_token_is_unauthorized(live_server: Any, transactional_db: None, cast: Any) -> None:
    with RollbackConsole(live_server.url, "not-a-token", sleep=lambda s: None) as rc, pytest.raises(Unauthorized):
        rc.action_types()
