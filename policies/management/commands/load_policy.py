from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from policies.manifest import ManifestError
from policies.services import load_policy


class Command(BaseCommand):
    help = "Validate a TOML policy manifest and make it the current policy version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--actor", default="cli", help="Who loads it, as recorded in the audit trail.")

    def handle(self, *args: object, **options: object) -> None:
        path = options["file"]
        assert isinstance(path, Path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            result = load_policy(text, actor=str(options["actor"]))
        except ManifestError as exc:
            raise CommandError(
                "The manifest was refused; the current policy stays:\n  " + "\n  ".join(exc.errors)
            ) from None
        version = result.version
        if result.created:
            self.stdout.write(f"Loaded policy {version.label} ({version.content_hash[:12]}); it is now current.")
        elif result.activated:
            self.stdout.write(f"Policy {version.label} ({version.content_hash[:12]}) was known; it is current again.")
        else:
            self.stdout.write(
                f"Policy {version.label} ({version.content_hash[:12]}) is already current; nothing changed."
            )
