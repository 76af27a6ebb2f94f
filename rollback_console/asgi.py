"""The ASGI entry point: `/mcp/` goes to the MCP server for agents (agents.http), everything else to Django.

Serve it with uvicorn (`uvicorn rollback_console.asgi:application --host 0.0.0.0 --port 8000`); the WSGI entry
point (rollback_console.wsgi) still serves everything but `/mcp/`.
"""

import os

from django.core.asgi import get_asgi_application
from starlette.types import ASGIApp, Receive, Scope, Send

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rollback_console.settings")
django_application = get_asgi_application()

from agents.http import mcp_application  # noqa: E402  (Django must be set up before the app's modules load)


def build_application() -> ASGIApp:
    """A new application: its MCP session manager runs once per lifespan, so each server needs its own."""
    mcp = mcp_application()

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await mcp(scope, receive, send)  # Django has no lifespan; the MCP session manager does
        elif scope["path"] == "/mcp" or scope["path"].startswith("/mcp/"):
            await mcp(scope, receive, send)
        else:
            # Django's stubs and Starlette type the same ASGI callables with different variance.
            await django_application(scope, receive, send)  # type: ignore[arg-type]

    return application


application = build_application()
