import sys
from pathlib import Path
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.bundle import BundleError, write_bundle
from audit.export import write_export


class _TextSink:
    """Lets the export write bytes to a text stream (call_command's stdout=StringIO)."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data.decode())


class Command(BaseCommand):
    help = (
        "Write the audit trail as JSON Lines (a header, then one event per line) to standard output or --output; "
        "or, with --bundle DIR, an evidence bundle an outsider checks with its own verify.py."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", default=None, metavar="FILE", help="write here instead of standard output")
        parser.add_argument("--bundle", default=None, metavar="DIR", help="write an evidence bundle into DIR")
        parser.add_argument("--from-seq", type=int, default=None, help="bundle: first seq (default 1)")
        parser.add_argument("--to-seq", type=int, default=None, help="bundle: last seq (default the head)")
        parser.add_argument("--rollback", type=int, default=None, help="bundle: the span of one rollback's events")
        parser.add_argument(
            "--anchor",
            action="append",
            default=None,
            metavar="FILE",
            help="bundle: anchor file to include (repeatable; default settings.AUDIT_ANCHOR_PATH)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["bundle"]:
            self._bundle(options)
            return
        if any(options[name] is not None for name in ("from_seq", "to_seq", "rollback", "anchor")):
            raise CommandError("--from-seq, --to-seq, --rollback and --anchor go with --bundle")
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

    def _bundle(self, options: dict[str, Any]) -> None:
        if options["output"]:
            raise CommandError("--output and --bundle exclude each other")
        if options["rollback"] is not None and (options["from_seq"] is not None or options["to_seq"] is not None):
            raise CommandError("--rollback chooses the range itself: give it without --from-seq and --to-seq")
        anchors = [Path(path) for path in options["anchor"]] if options["anchor"] is not None else None
        try:
            summary = write_bundle(
                Path(options["bundle"]),
                from_seq=options["from_seq"],
                to_seq=options["to_seq"],
                rollback_id=options["rollback"],
                anchor_paths=anchors,
            )
        except (BundleError, OSError) as error:
            raise CommandError(str(error)) from error
        self.stderr.write(
            f"bundle written to {summary.directory}: events {summary.from_seq}..{summary.to_seq} "
            f"({summary.events}), {summary.anchors} anchors, {summary.manifests} manifests; "
            f"check it with: python3 {summary.directory / 'verify.py'} {summary.directory}"
        )
