"""`python manage.py mcp_server --token KEY`: the MCP server over stdio, for an agent that starts it itself."""

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.access import Refused, authenticate
from agents.server import MCP_PATH, STDIO_CLIENT, build_server

TOKEN_ENV = "ROLLBACK_CONSOLE_TOKEN"


class Command(BaseCommand):
    help = (
        "Serve the MCP tools over stdio for one agent. The token (an integrator's or a person's, from issue_token) "
        f"comes from --token or the environment variable {TOKEN_ENV}; every tool call is checked with it as the "
        "REST API checks a request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token", help=f"The agent's token (default: ${TOKEN_ENV}; prefer it: argv is visible).")

    def handle(self, *args: Any, **options: Any) -> None:
        token = options["token"] or os.environ.get(TOKEN_ENV, "")
        if not token:
            raise CommandError(f"Give the agent's token with --token or {TOKEN_ENV}.")
        try:
            user = authenticate(f"Token {token}", path=MCP_PATH, client_address=STDIO_CLIENT)
        except Refused as refusal:
            raise CommandError(f"The token was refused: {refusal.message}") from None
        # stdout carries the protocol: anything said to a person goes to stderr.
        self.stderr.write(f"Serving MCP over stdio as {user.get_username()}.")
        build_server(token=token).run("stdio")
