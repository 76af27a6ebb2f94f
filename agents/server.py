"""The MCP server: the tools an agent calls before and after it acts, over stdio or streamable HTTP.

Every call authenticates its token again (a revoked token stops working at once, as on the REST API), and runs
the Django work in Django's one thread for sync code, closing stale connections around it as a request would.
"""

from collections.abc import Callable
from typing import Annotated, Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections, connections
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from agents import tools
from agents.access import Refused, authenticate

INSTRUCTIONS = """Rollback Console records the actions you execute after a person approved them, and reverses
them when a reviewer, a customer or an incident asks. Before an action with consequences (a refund, a transfer),
call `action_types` with its type: it says whether and how long it stays reversible and who must sign once the
window has passed. After acting, call `record_action` with a unique `external_id` (safe to repeat). `get_action`
and `preview_reversal` show what reversing a recorded action would take; `get_rollback` a rollback's state and
its sign-off decisions."""

MCP_PATH = "/mcp/"
STDIO_CLIENT = "127.0.0.1"  # a stdio agent is a local process: the address its refusals are audited under


class Credentials:
    """Where a call's token comes from: fixed for a stdio server, the request's Authorization header over HTTP."""

    def __init__(self, token: str | None = None):
        self.token = token

    def of(self, ctx: Context) -> tuple[str | None, str]:
        if self.token is not None:
            return f"Token {self.token}", STDIO_CLIENT
        request = ctx.request_context.request
        headers = getattr(request, "headers", None)
        client = getattr(request, "client", None)
        return (headers.get("authorization") if headers is not None else None), (client.host if client else "")


def _recycle_stale_connections() -> None:
    # What Django does around each request. Never inside a transaction (a caller's own, or a test's): closing
    # its connection would break it.
    if not any(conn.in_atomic_block for conn in connections.all(initialized_only=True)):
        close_old_connections()


def _work(authorization: str | None, client_address: str, tool: Callable[..., dict[str, Any]], *args: Any) -> Any:
    _recycle_stale_connections()
    try:
        user = authenticate(authorization, path=MCP_PATH, client_address=client_address)
        return tool(user, *args)
    except Exception as exc:
        refusal = tools.refusal_of(exc)
        if refusal is None:
            raise
        return refusal
    finally:
        _recycle_stale_connections()


async def _call(credentials: Credentials, ctx: Context, tool: Callable[..., dict[str, Any]], *args: Any) -> Any:
    authorization, client_address = credentials.of(ctx)
    answer = await sync_to_async(_work, thread_sensitive=True)(authorization, client_address, tool, *args)
    if isinstance(answer, Refused):
        raise ToolError(f"Refused ({answer.status}): {answer.message}")
    return answer


ActionId = Annotated[int, Field(description="The action's id in Rollback Console (`id` in record_action's answer).")]
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)


def build_server(*, token: str | None = None) -> MCPServer:
    """The server for one stdio agent holding `token`, or (token None) for HTTP, where each request brings its own."""
    credentials = Credentials(token)
    server = MCPServer("rollback-console", instructions=INSTRUCTIONS)

    @server.tool(annotations=READ_ONLY)
    async def action_types(
        ctx: Context,
        name: Annotated[str | None, Field(description='One action type, e.g. "refund.issue"; omit for all.')] = None,
    ) -> dict[str, Any]:
        """Whether an action type is reversible (full, partial, irreversible), how (webhook, python, manual), its
        reversal window, and the extra sign-offs a reversal needs once the window has passed, with a one-sentence
        summary. Consult it before executing an action with consequences."""
        return await _call(credentials, ctx, tools.action_types, name)  # type: ignore[no-any-return]

    @server.tool(annotations=READ_ONLY)
    async def get_action(ctx: Context, action_id: ActionId) -> dict[str, Any]:
        """A recorded action: its state, reversibility, the actions it caused, and every rollback including it."""
        return await _call(credentials, ctx, tools.get_action, action_id)  # type: ignore[no-any-return]

    @server.tool(annotations=READ_ONLY)
    async def preview_reversal(ctx: Context, action_id: ActionId) -> dict[str, Any]:
        """What reversing a recorded action would take now: window open or not, when it ends, extra sign-offs once
        expired, the cascade of downstream actions with their depth, prerequisites and side effects. Reads only."""
        return await _call(credentials, ctx, tools.preview_reversal, action_id)  # type: ignore[no-any-return]

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True))
    async def record_action(
        ctx: Context,
        external_id: Annotated[str, Field(description="Unique per integrator; the same body again is a replay.")],
        action_type: Annotated[str, Field(description="An action type of the current policy.")],
        subject: Annotated[str, Field(description='Whom or what it acted on, e.g. "customer:1001".')],
        executed_at: Annotated[str, Field(description="ISO 8601 with offset.")],
        approved_by: Annotated[str, Field(description="The username of the person who approved it.")],
        approved_at: Annotated[str, Field(description="ISO 8601 with offset.")],
        payload: dict[str, Any] | None = None,
        approval_context: dict[str, Any] | None = None,
        caused_by: Annotated[
            list[str] | None, Field(description="External ids of your earlier actions that led to this one.")
        ] = None,
    ) -> dict[str, Any]:
        """Record an action you executed after a person approved it (integrator tokens only). Answers
        `{"created": bool, "action": {...}}`; sending the same body again returns the same action, a different
        body under the same external_id is refused."""
        body = {
            "external_id": external_id,
            "action_type": action_type,
            "subject": subject,
            "payload": payload or {},
            "executed_at": executed_at,
            "approved_by": approved_by,
            "approved_at": approved_at,
            "approval_context": approval_context or {},
            "caused_by": caused_by or [],
        }
        return await _call(credentials, ctx, tools.record_action, body)  # type: ignore[no-any-return]

    @server.tool(annotations=READ_ONLY)
    async def get_rollback(
        ctx: Context, rollback_id: Annotated[int, Field(description="The rollback's id.")]
    ) -> dict[str, Any]:
        """A rollback's state, its required and given sign-offs (who decided what, with comments), its steps and
        communications. Only rollbacks this token may see."""
        return await _call(credentials, ctx, tools.get_rollback, rollback_id)  # type: ignore[no-any-return]

    return server
