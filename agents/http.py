"""The MCP server over streamable HTTP, mounted at `/mcp/` by rollback_console.asgi.

Stateless, JSON answers: any worker of any process can answer any request, as with the REST API. A request
without a valid token is refused (401) and audited before the MCP app sees it; each tool call then authenticates
the same header again and asks the API's permission checks.
"""

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agents.access import Refused, authenticate
from agents.server import MCP_PATH, build_server


def _allowed_hosts() -> list[str]:
    # What Django itself accepts (HttpRequest.get_host): with DEBUG on and none listed, the local names.
    if settings.ALLOWED_HOSTS:
        return list(settings.ALLOWED_HOSTS)
    return [".localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else []


def _signed_in(authorization: str | None, client_address: str) -> None:
    authenticate(authorization, path=MCP_PATH, client_address=client_address)


class TokenRequired:
    """Refuses, before the MCP app, a request whose Host Django would refuse (400) or that carries no valid token
    (401, audited as `auth.failed`, as on the REST API)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            domain, _ = split_domain_port(headers.get("host", ""))
            if not domain or not validate_host(domain, _allowed_hosts()):
                await JSONResponse({"detail": "Invalid Host header."}, status_code=400)(scope, receive, send)
                return
            client = scope.get("client")
            try:
                await sync_to_async(_signed_in, thread_sensitive=True)(
                    headers.get("authorization"), client[0] if client else ""
                )
            except Refused as refusal:
                response = JSONResponse(
                    {"detail": refusal.message}, status_code=refusal.status, headers={"WWW-Authenticate": "Token"}
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def mcp_application() -> Any:
    """The ASGI app serving `/mcp/` (and the lifespan that runs the MCP session manager)."""
    server = build_server()
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        json_response=True,
        # The Host is checked against ALLOWED_HOSTS above, as Django checks it for every other path.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return TokenRequired(app)
