"""The MCP server over streamable HTTP at /mcp/, served with Django by rollback_console.asgi under uvicorn (as in
production), reached with the SDK's HTTP client; and over stdio, started as `manage.py mcp_server`."""

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from django.conf import settings as django_settings
from django.db import connection
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from actions.models import Action
from audit.models import AuditEvent
from tests.mcp.conftest import TOOLS, answer, flush_counted_refusals, refund_body, refusal, run, token_of

# Served from other threads and processes, which see only committed data: transactional tests, which only the
# PostgreSQL run can empty again (the audit trail's triggers refuse SQLite's flush).
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="transactional tests need PostgreSQL"),
]


@pytest.fixture
def asgi_server(transactional_db: None, settings: Any) -> Iterator[str]:
    """rollback_console.asgi under uvicorn on a free port, in a thread: its base URL."""
    from rollback_console.asgi import build_application

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]  # as live_server allows its own host

    config = uvicorn.Config(build_application(), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://localhost:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def over_http(base_url: str, authorization: str | None) -> Client:
    headers = {"Authorization": authorization} if authorization else {}
    return Client(streamable_http_client(f"{base_url}/mcp/", http_client=httpx2.AsyncClient(headers=headers)))


def test_an_integrator_lists_and_calls_the_tools_over_http(asgi_server: str, cast: Any) -> None:
    token = token_of(cast.shop)

    async def session(client: Client) -> tuple[Any, ...]:
        listed = await client.list_tools()
        recorded = await client.call_tool("record_action", refund_body())
        types = await client.call_tool("action_types", {"name": "refund.issue"})
        return listed, recorded, types

    listed, recorded, types = run(session, over_http(asgi_server, f"Token {token}"))
    assert {tool.name for tool in listed.tools} == TOOLS
    assert answer(recorded)["created"] is True
    assert answer(types)["action_types"][0]["window"] == "30d"
    assert Action.objects.get(external_id="agent-run-1/refund").integrator == cast.shop


def test_a_bearer_token_is_accepted_as_mcp_clients_send_it(asgi_server: str, cast: Any) -> None:
    token = token_of(cast.alice)
    result = run(lambda client: client.call_tool("action_types", {}), over_http(asgi_server, f"Bearer {token}"))
    assert {entry["name"] for entry in answer(result)["action_types"]} >= {"refund.issue"}


def test_a_person_without_a_role_is_refused_over_http(asgi_server: str, cast: Any) -> None:
    token = token_of(cast.nobody)
    result = run(lambda client: client.call_tool("action_types", {}), over_http(asgi_server, f"Token {token}"))
    assert refusal(result) == "Refused (403): Reading actions needs a role."
    assert AuditEvent.objects.filter(kind="auth.forbidden", actor="nobody").count() == 1


def test_a_request_without_a_valid_token_gets_401_and_is_audited(asgi_server: str, cast: Any) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    for authorization in (None, "Token not-a-token"):
        sent = headers if authorization is None else {**headers, "Authorization": authorization}
        response = httpx2.post(f"{asgi_server}/mcp/", json=initialize, headers=sent)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Token"
        assert "tools" not in response.text
    flush_counted_refusals()
    reasons = [json.loads(event.data)["reason"] for event in AuditEvent.objects.filter(kind="auth.failed")]
    assert "Authentication credentials were not provided." in reasons


def test_a_host_django_would_refuse_is_refused(asgi_server: str, cast: Any) -> None:
    response = httpx2.post(
        f"{asgi_server}/mcp/",
        json={},
        headers={"Host": "evil.example", "Authorization": f"Token {token_of(cast.shop)}"},
    )
    assert response.status_code == 400


def test_everything_but_mcp_is_still_django(asgi_server: str, cast: Any) -> None:
    assert httpx2.get(f"{asgi_server}/api/v1/action-types/").status_code == 401
    assert httpx2.get(f"{asgi_server}/accounts/login/").status_code == 200


def test_an_agent_starts_the_stdio_server_with_its_token_and_calls_a_tool(cast: Any) -> None:
    database = django_settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "ROLLBACK_CONSOLE_TOKEN": token_of(cast.shop)}
    parameters = StdioServerParameters(
        command=sys.executable, args=["manage.py", "mcp_server"], env=env, cwd=Path(django_settings.BASE_DIR)
    )

    async def session(client: Client) -> tuple[Any, Any]:
        return await client.list_tools(), await client.call_tool("record_action", refund_body())

    listed, recorded = run(session, Client(parameters))
    assert {tool.name for tool in listed.tools} == TOOLS
    assert answer(recorded)["action"]["integrator"] == "shop"
