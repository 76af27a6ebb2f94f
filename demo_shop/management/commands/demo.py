import io
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from demo_shop.people import INTEGRATOR, integrator_token, seed_people
from demo_shop.story import seed_story
from policies.services import load_policy

DEMO_MANIFEST = Path(settings.BASE_DIR) / "policies" / "manifests" / "demo.toml"


def issue_token(username: str) -> str:
    out = io.StringIO()
    call_command("issue_token", username, actor="demo", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def agent_instructions(token: str) -> str:
    """How to connect an AI agent to this demo over MCP, as the shop (absolute paths, for an MCP client's config)."""
    environment = "DEBUG=1 " if settings.DEBUG else ""
    manage = Path(settings.BASE_DIR) / "manage.py"
    return (
        "\nConnect an agent over MCP (its tools act as the shop). Over stdio, the agent starts:\n"
        f"  {environment}ROLLBACK_CONSOLE_TOKEN={token} {sys.executable} {manage} mcp_server\n"
        "Over streamable HTTP, serve the ASGI app and point the agent at http://127.0.0.1:8002/mcp/ with the header\n"
        "Authorization: Bearer <the token below>:\n"
        f"  {environment}{Path(sys.executable).parent / 'uvicorn'} rollback_console.asgi:application --port 8002"
    )


class Command(BaseCommand):
    help = (
        "Set up the demo: migrate, load the demo policy, create one user per role and the shop's token, and seed "
        "the demo shop's customers and its agents' actions. Running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--credentials",
            type=Path,
            default=Path(settings.VAR_DIR) / "demo-credentials.json",
            help="Where the generated passwords and the shop's token are kept (mode 0600) to be shown again.",
        )

    def handle(self, *args: object, **options: object) -> None:
        credentials = options["credentials"]
        assert isinstance(credentials, Path)
        call_command("migrate", interactive=False, verbosity=0)
        policy = load_policy(DEMO_MANIFEST.read_text(), actor="demo")
        logins = seed_people(credentials)
        token = integrator_token(credentials, issue_token)
        seeded = seed_story()

        self.stdout.write(f"Policy {policy.version.label} ({policy.version.content_hash[:12]}) is current.")
        self.stdout.write(
            f"Demo shop: {seeded.customers} customers; {seeded.actions_total} actions recorded by {INTEGRATOR!r}"
            f" ({seeded.actions_recorded} new this run); {seeded.rollbacks_filed} rollback requests filed this run."
        )
        self.stdout.write("\nLog in as (passwords are kept in " + str(credentials) + "):")
        for login in logins:
            roles = ", ".join(login.roles) or "superuser, /admin/ only"
            self.stdout.write(f"  {login.username:<8} {login.password:<16} {roles}")
        self.stdout.write(agent_instructions(token))
        self.stdout.write(f"\nThe shop's API token (Authorization: Token ...):\n  {token}")
