"""Each MCP tool called through the SDK's client, as an integrator and as people without permission. The server
is the one `manage.py mcp_server` serves over stdio (a fixed token); tests/mcp/test_http.py covers HTTP."""

import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from actions.models import Action
from audit.models import AuditEvent
from rollback_console.authentication import revoke_tokens
from rollbacks.services import request_rollback
from tests.mcp.conftest import TOOLS, answer, call, flush_counted_refusals, refund_body, refusal, run, token_of

pytestmark = pytest.mark.django_db


def test_the_server_lists_its_tools_with_their_arguments(cast: Any) -> None:
    from mcp import Client

    from agents.server import build_server

    listed = run(lambda client: client.list_tools(), Client(build_server(token=token_of(cast.shop))))
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    assert set(tools["record_action"].input_schema["required"]) == {
        "external_id",
        "action_type",
        "subject",
        "executed_at",
        "approved_by",
        "approved_at",
    }
    assert all(tool.description for tool in listed.tools)


def test_an_agent_looks_up_a_types_reversibility_and_window_before_acting(cast: Any) -> None:
    found = answer(call(token_of(cast.shop), "action_types", {"name": "refund.issue"}))
    (refund_type,) = found["action_types"]
    assert refund_type["reversibility"] == "full"
    assert refund_type["window"] == "30d"
    assert refund_type["window_expired_signoffs"] == [{"role": "executive", "count": 1}]
    assert refund_type["summary"] == "reversible within 30 days; after that an executive must sign off"


def test_an_unknown_action_type_is_named_in_the_refusal(cast: Any) -> None:
    assert "'refund.everything' is not an action type" in refusal(
        call(token_of(cast.shop), "action_types", {"name": "refund.everything"})
    )


def test_an_integrator_records_an_action_and_a_replay_returns_the_same_one(cast: Any) -> None:
    token = token_of(cast.shop)
    first = answer(call(token, "record_action", refund_body()))
    again = answer(call(token, "record_action", refund_body()))
    assert (first["created"], again["created"]) == (True, False)
    assert first["action"]["id"] == again["action"]["id"]
    assert first["action"]["integrator"] == "shop"
    assert AuditEvent.objects.filter(kind="action.recorded", actor="shop").count() == 1


def test_a_different_body_under_a_recorded_external_id_is_refused_and_changes_nothing(cast: Any) -> None:
    token = token_of(cast.shop)
    answer(call(token, "record_action", refund_body()))
    text = refusal(call(token, "record_action", refund_body(subject="customer:2002")))
    assert text.startswith("Refused (409)")
    assert Action.objects.get(external_id="agent-run-1/refund").subject == "customer:1001"


def test_bad_input_is_refused_naming_the_field(cast: Any) -> None:
    text = refusal(call(token_of(cast.shop), "record_action", refund_body(approved_by="no-such-person")))
    assert text.startswith("Refused (400)")
    assert "approved_by" in text
    assert not Action.objects.filter(external_id="agent-run-1/refund").exists()


def test_an_integrator_previews_the_reversal_of_its_action(cast: Any, refund: Action) -> None:
    preview = answer(call(token_of(cast.shop), "preview_reversal", {"action_id": refund.pk}))
    assert preview["action"] == refund.pk
    assert preview["window_open"] is True
    assert preview["extra_signoffs"] == []
    assert preview["prerequisites"] == ["account_open"]


def test_an_integrator_reads_the_state_and_decisions_of_a_rollback_it_filed(cast: Any, refund: Action) -> None:
    rollback = request_rollback(
        requester=cast.shop, trigger="customer_request", reason="the customer asked", actions=[refund.pk]
    )
    token = token_of(cast.shop)
    shown = answer(call(token, "get_rollback", {"rollback_id": rollback.pk}))
    assert shown["state"] == "pending_authorization"
    assert shown["required_signoffs"] == [{"role": "customer_service", "count": 1, "given": 0}]
    assert shown["signoffs"] == []
    action = answer(call(token, "get_action", {"action_id": refund.pk}))
    assert action["rollbacks"] == [
        {"id": rollback.pk, "trigger": "customer_request", "state": "pending_authorization", "outcome": "pending"}
    ]


def test_a_person_without_a_role_is_refused_by_every_tool_and_sees_no_data(cast: Any, refund: Action) -> None:
    rollback = request_rollback(requester=cast.shop, trigger="customer_request", reason="asked", actions=[refund.pk])
    token = token_of(cast.nobody)
    calls = {
        "action_types": {},
        "get_action": {"action_id": refund.pk},
        "preview_reversal": {"action_id": refund.pk},
        "record_action": refund_body(external_id="nobody/refund"),
        "get_rollback": {"rollback_id": rollback.pk},
    }
    assert set(calls) == TOOLS
    texts = {tool: refusal(call(token, tool, arguments)) for tool, arguments in calls.items()}
    assert texts["action_types"] == "Refused (403): Reading actions needs a role."
    assert texts["record_action"] == "Refused (403): Only integrators record actions."
    assert texts["get_rollback"] == "Refused (404): Not found."
    for text in texts.values():
        assert "customer:1001" not in text and "refund.issue" not in text
    refused = AuditEvent.objects.filter(kind="auth.forbidden", actor="nobody")
    assert refused.count() == 4
    assert {json.loads(event.data)["path"] for event in refused} == {
        "mcp:action_types",
        "mcp:get_action",
        "mcp:preview_reversal",
        "mcp:record_action",
    }


def test_a_reviewer_reads_but_may_not_record(cast: Any, refund: Action) -> None:
    token = token_of(cast.alice)
    assert answer(call(token, "get_action", {"action_id": refund.pk}))["id"] == refund.pk
    assert refusal(call(token, "record_action", refund_body())) == "Refused (403): Only integrators record actions."


def test_another_integrators_action_and_rollback_are_not_found(cast: Any, refund: Action) -> None:
    rollback = request_rollback(requester=cast.shop, trigger="customer_request", reason="asked", actions=[refund.pk])
    token = token_of(cast.other_shop)
    assert refusal(call(token, "preview_reversal", {"action_id": refund.pk})) == "Refused (404): Not found."
    assert refusal(call(token, "get_rollback", {"rollback_id": rollback.pk})) == "Refused (404): Not found."


def test_a_wrong_or_revoked_token_is_refused_and_audited(cast: Any) -> None:
    assert refusal(call("not-a-token", "action_types")).startswith("Refused (401)")
    token = token_of(cast.shop)
    revoke_tokens(cast.shop, actor="test-setup")
    assert refusal(call(token, "action_types")).startswith("Refused (401)")
    flush_counted_refusals()
    failed = AuditEvent.objects.filter(kind="auth.failed")
    assert failed.count() >= 1
    assert {json.loads(event.data)["path"] for event in failed} == {"/mcp/"}


def test_the_stdio_command_refuses_to_start_without_a_valid_token(cast: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("ROLLBACK_CONSOLE_TOKEN", raising=False)
    with pytest.raises(CommandError, match="--token or ROLLBACK_CONSOLE_TOKEN"):
        call_command("mcp_server")
    with pytest.raises(CommandError, match="refused"):
        call_command("mcp_server", token="not-a-token")
    flush_counted_refusals()
    assert [json.loads(event.data)["path"] for event in AuditEvent.objects.filter(kind="auth.failed")] == ["/mcp/"]
