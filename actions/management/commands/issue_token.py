import getpass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from knox.settings import knox_settings

from policies.manifest import parse_duration
from rollback_console.authentication import issue_token, token_max_age


class Command(BaseCommand):
    help = "Issue an API token for a user and print it (alone, on the last line). It is stored only as a hash."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--expires",
            default=None,
            help="How long the token lives, e.g. 90d, 12h (default: REST_KNOX TOKEN_TTL); at most TOKEN_MAX_AGE_DAYS.",
        )
        parser.add_argument("--actor", default=None, help="Who issues it, as the audit trail records it.")

    def handle(self, *args: object, **options: object) -> None:
        username = str(options["username"])
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user is named {username!r}.")
        if not user.is_active:
            raise CommandError(f"{username!r} is inactive: an inactive user's token would be refused.")
        text = options["expires"]
        expires: timedelta
        if text is None:
            expires = knox_settings.TOKEN_TTL
        elif text == "never":
            raise CommandError(
                f"--expires: tokens must expire; give a duration of at most {settings.TOKEN_MAX_AGE_DAYS}d "
                "(TOKEN_MAX_AGE_DAYS)."
            )
        else:
            try:
                expires = parse_duration(str(text), limit=token_max_age())
            except ValueError as exc:
                raise CommandError(f"--expires: {exc} (TOKEN_MAX_AGE_DAYS)") from None
        actor = str(options["actor"] or f"cli:{getpass.getuser()}")
        record, token = issue_token(user, expires=expires, actor=actor)
        self.stdout.write(
            f"Token for {username}, expires {record.expiry.isoformat()}. "
            "Keep it secret: it is not stored and cannot be shown again."
        )
        self.stdout.write(token)
