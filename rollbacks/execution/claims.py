"""One worker at a time per action, across transactions.

A step commits after each phase, so a row lock cannot cover a whole step. On PostgreSQL a session-level
advisory lock keyed by the action does: a second delivery of the same step (a redelivered or swept task), or a
step of another rollback reaching the same action, waits its turn instead of calling the integrator alongside.
The database drops the lock with the connection, so a worker killed mid-step leaves nothing held. SQLite runs
one writer at a time anyway and has no such locks; there the idempotency keys alone make repeats safe.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

# Keys in the advisory-lock space that name actions: a fixed high prefix keeps them apart from other users.
_ACTION_KEY_PREFIX = 0x52424B << 40


@contextmanager
def claim_action(action_id: int) -> Iterator[bool]:
    """Yields whether this process now holds the action; it is released on leaving the block."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = _ACTION_KEY_PREFIX + action_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
