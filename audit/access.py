"""Access to the product, audited.

Refused calls (`auth.failed`: no or a bad token; `access.locked_out`: a login refused while locked out) are counted
per client address and minute in `AccessFailureTally` and written as one event per address and minute, with the
count, once that minute is over. Counting is one upsert (`INSERT ... ON CONFLICT DO UPDATE SET count = count + 1`)
that the database makes atomic, so any number of gunicorn processes and threads count into the same row; writing
takes the rows of closed minutes under `FOR UPDATE SKIP LOCKED`, appends their events and deletes them in one
transaction, so each row becomes exactly one event whoever flushes (the next refused call after the minute, or
beat every minute). A minute is flushed only once the next one is over too, so a call that read the clock just
before a minute ended still lands in its row before the row is written.

The signals at the end audit who holds which role or permission, users created, deactivated or made staff or
superuser, password changes and failed logins.
"""

from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from audit.models import AccessFailureTally
from audit.services import EventSpec, record_events

GRACE_MINUTES = 1
FLUSH_BATCH = 1000

_TABLE = AccessFailureTally._meta.db_table
_COUNT = (
    f"INSERT INTO {_TABLE} (kind, address, minute, count, method, path, reason) VALUES (%s, %s, %s, 1, %s, %s, %s) "
    f"ON CONFLICT (kind, address, minute) DO UPDATE SET count = {_TABLE}.count + 1"
)


def client_address(request: Any) -> str:
    """The address a refusal is counted under: DRF's rule (REMOTE_ADDR, or with `NUM_PROXIES` set the address the
    last trusted proxy saw), the same one its throttles use. Never a raw X-Forwarded-For that any client writes:
    a flood could then give every call an address of its own."""
    return str(BaseThrottle().get_ident(request) or "unknown")[:64]


def _minute(now: datetime | None) -> int:
    return int((now or timezone.now()).timestamp() // 60)


def count_access_failure(kind: str, request: Any, reason: str, *, now: datetime | None = None) -> None:
    """Count one refused call of `kind` from the request's address in the current minute; write the closed minutes'
    counts if there are any (one indexed look-up when there are none)."""
    minute = _minute(now)
    with connection.cursor() as cursor:
        cursor.execute(
            _COUNT,
            [kind, client_address(request), minute, str(request.method)[:16], str(request.path)[:200], reason[:200]],
        )
    if AccessFailureTally.objects.filter(minute__lt=minute - GRACE_MINUTES).exists():
        flush_access_failures(now=now)


def flush_access_failures(*, now: datetime | None = None) -> int:
    """Write one event per counted kind, address and closed minute, with the count, and forget the counts; how many
    events were written. Safe to run from several processes at once: each row is taken by one of them."""
    cutoff = _minute(now) - GRACE_MINUTES
    written = 0
    while True:
        with transaction.atomic():
            tallies = list(
                AccessFailureTally.objects.select_for_update(skip_locked=True)
                .filter(minute__lt=cutoff)
                .order_by("minute", "id")[:FLUSH_BATCH]
            )
            if not tallies:
                return written
            record_events([_event(tally) for tally in tallies])
            AccessFailureTally.objects.filter(pk__in=[tally.pk for tally in tallies]).delete()
        written += len(tallies)


def _event(tally: AccessFailureTally) -> EventSpec:
    return EventSpec(
        tally.kind,
        actor="anonymous",
        data={
            "address": tally.address,
            "minute": datetime.fromtimestamp(tally.minute * 60, tz=UTC).isoformat(),
            "count": tally.count,
            "method": tally.method,
            "path": tally.path,
            "reason": tally.reason,
        },
    )
