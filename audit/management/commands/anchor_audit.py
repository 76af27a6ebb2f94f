from typing import Any

import orjson
from django.core.management.base import BaseCommand, CommandParser

from audit.services import anchor_audit_head, deliver_anchors


class Command(BaseCommand):
    help = (
        "Append the audit chain head {seq, hash, at} as a JSON line to AUDIT_ANCHOR_PATH (or --path), and post it "
        "to AUDIT_ANCHOR_URL when that is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--path", default=None, help="anchor file (default: settings.AUDIT_ANCHOR_PATH)")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(orjson.dumps(anchor_audit_head(options["path"])).decode())
        deliver_anchors()  # to AUDIT_ANCHOR_URL, when set; what it does not take now, beat retries
