import getpass

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rollback_console.authentication import revoke_tokens


class Command(BaseCommand):
    help = "Revoke every API token of a user, at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--actor", default=None, help="Who revokes them, as the audit trail records it.")

    def handle(self, *args: object, **options: object) -> None:
        username = str(options["username"])
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is named {username!r}.")
        count = revoke_tokens(user, actor=str(options["actor"] or f"cli:{getpass.getuser()}"))
        self.stdout.write(f"Revoked {count} token(s) of {username}.")
