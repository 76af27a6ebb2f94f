"""MCP clients of the SDK talking to our server as members of the cast, with tokens from the real service."""

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connections
from django.utils import timezone
from mcp import Client
from mcp.types import CallToolResult

from actions.models import Action
from actions.services import record_action
from agents.server import build_server
from audit.access import flush_access_failures
from rollback_console.authentication import issue_token

TOOLS = {"action_types", "get_action", "preview_reversal", "record_action", "get_rollback"}


def token_of(user: Any) -> str:
    return issue_token(user, expires=timedelta(days=1), actor="test-setup")[1]


def run(session: Callable[[Client], Coroutine[Any, Any, Any]], client: Client) -> Any:
    """Open `client`, run `session` with it, close it: one agent's conversation. Through async_to_sync, so the
    tools' Django work (sync_to_async, thread-sensitive) runs in this thread, inside the test's transaction."""

    async def conversation() -> Any:
        async with client:
            return await session(client)

    return async_to_sync(conversation)()


def call(token: str, tool: str, arguments: dict[str, Any] | None = None) -> CallToolResult:
    """One tool call by an agent holding `token`, through the SDK's client over the in-memory transport to the
    server the stdio command serves."""
    return run(lambda client: client.call_tool(tool, arguments or {}), Client(build_server(token=token)))


def answer(result: CallToolResult) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def refusal(result: CallToolResult) -> str:
    """The refusal's text, after the SDK's "Error executing tool NAME: " prefix."""
    assert result.is_error
    assert result.structured_content is None
    text = "".join(getattr(block, "text", "") for block in result.content)
    return text.partition(": ")[2] if text.startswith("Error executing tool") else text


EXECUTED = timezone.now() - timedelta(hours=1)


def refund_body(**overrides: Any) -> dict[str, Any]:
    executed = EXECUTED
    body: dict[str, Any] = {
        "external_id": "agent-run-1/refund",
        "action_type": "refund.issue",
        "subject": "customer:1001",
        "payload": {"amount": "25.00", "currency": "EUR"},
        "executed_at": executed.isoformat(),
        "approved_by": "alice",
        "approved_at": (executed - timedelta(seconds=30)).isoformat(),
    }
    body.update(overrides)
    return body


@pytest.fixture(autouse=True)
def _close_the_servers_connections() -> Iterator[None]:
    """Served by uvicorn (test_http.py), the tools run in the single thread asgiref keeps for sync code, whose
    connection outlives a test (as it should in production); closed here so the test database can be dropped."""
    yield
    asyncio.run(sync_to_async(connections.close_all, thread_sensitive=True)())


@pytest.fixture
def refund(cast: Any) -> Action:
    return record_action(cast.shop, refund_body(external_id="agent-run-0/refund"))[0]


def flush_counted_refusals() -> None:
    """Refused calls are counted per address and minute and written once the minute is over (audit.access): write
    the counts now, as if three minutes had passed."""
    flush_access_failures(now=timezone.now() + timedelta(minutes=3))
