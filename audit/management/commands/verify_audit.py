from pathlib import Path
from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.chain import merge_anchors, verify_export
from audit.verification import verify_and_checkpoint, verify_since_checkpoint


class Command(BaseCommand):
    help = (
        "Recompute the audit chain and print {ok, events, head} or {ok, events, broken_seq}; exit non-zero when "
        "it is broken. Only what follows the last checkpoint is read unless --full is given. --anchor also holds it "
        "against anchors written out earlier; --from-export checks an "
        "export_audit file instead of the database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--anchor", action="append", default=[], metavar="FILE", help="anchor file (repeatable)")
        parser.add_argument("--from-export", metavar="FILE", help="verify this export without the database")
        parser.add_argument(
            "--processes", type=int, default=None, help="processes to use on PostgreSQL (implies --full)"
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="recompute the whole trail (default: only what follows the last checkpoint, when there is one)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        anchors: dict[int, str] = {}
        conflicts: set[int] = set()
        for path in options["anchor"]:
            try:
                with open(path, "rb") as lines:
                    merge_anchors(lines, anchors, conflicts)
            except (OSError, ValueError) as error:
                raise CommandError(f"{path}: {error}") from error
        if options["from_export"]:
            try:
                with Path(options["from_export"]).open("rb") as lines:
                    verdict = verify_export(lines, anchors, conflicts)
            except (OSError, ValueError) as error:
                raise CommandError(f"{options['from_export']}: {error}") from error
        else:
            if options["processes"] is not None and options["processes"] < 1:
                raise CommandError("--processes must be at least 1")
            # --processes only means something to a full verification, which it asked for before checkpoints.
            if options["full"] or options["processes"] is not None:
                verdict = verify_and_checkpoint(
                    anchors=anchors, processes=options["processes"], anchor_conflicts=conflicts
                )
            else:
                verdict = verify_since_checkpoint(anchors=anchors, anchor_conflicts=conflicts)
        self.stdout.write(orjson.dumps(verdict.as_dict()).decode())
        if not verdict.ok:
            raise CommandError(f"the audit chain breaks at seq {verdict.broken_seq} ({verdict.reason})")
