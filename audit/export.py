"""Writes the trail as JSON Lines that can be verified without the database (`verify_audit --from-export`).

The first line is a header naming the format and the chain head the export was taken at; then one line per event
in seq order, with `data` as stored (canonical JSON) and both hashes. Header and events come from one snapshot.
"""

from collections.abc import Iterable
from typing import IO

from django.db import connection
from django.utils import timezone

from audit.chain import Row, copy_rows, export_header, export_line, postgres_copy_sql
from audit.verification import chain_head, orm_rows, trail_snapshot

BUFFERED_LINES = 2000
LAST_SEQ = 2**63 - 1


def write_export(out: IO[bytes]) -> int:
    """Write the header and every event to `out`; return the number of events written."""
    with trail_snapshot():
        head_seq, head_hash = chain_head()
        out.write(export_header(head_seq, head_hash, timezone.now().isoformat()) + b"\n")
        if connection.vendor != "postgresql":
            return write_lines(out, orm_rows())
        rows = copy_rows(connection.connection, postgres_copy_sql(0, LAST_SEQ))
        try:
            return write_lines(out, rows)
        finally:
            rows.close()


def write_lines(out: IO[bytes], rows: Iterable[Row]) -> int:
    written = 0
    lines: list[bytes] = []
    for row in rows:
        lines.append(export_line(row))
        if len(lines) == BUFFERED_LINES:
            out.write(b"\n".join(lines) + b"\n")
            written += len(lines)
            lines.clear()
    if lines:
        out.write(b"\n".join(lines) + b"\n")
        written += len(lines)
    return written
