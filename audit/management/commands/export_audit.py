import sys
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.export import write_export


class _TextSink:
    """Lets the export write bytes to a text stream (call_command's stdout=StringIO)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data.decode())


class Command(BaseCommand):
    help = "Write the audit trail as JSON Lines (a header, then one event per line) to standard output or --output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default=None, metavar="FILE", help="write here instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["output"]:
            try:
                with open(options["output"], "wb") as out:
                    written = write_export(out)
            except OSError as error:
                raise CommandError(f"{options['output']}: {error}") from error
            self.stderr.write(f"{written} events written to {options['output']}")
            return
        stream = self.stdout._out
        binary = getattr(stream, "buffer", None)
        write_export(binary if binary is not None else _TextSink(stream))  # type: ignore[arg-type]
        if binary is not None:
            binary.flush()
        sys.stdout.flush()
