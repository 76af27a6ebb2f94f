"""One worker at a time per action, across transactions.

A step commits after each phase, so a row lock cannot cover a whole step. On PostgreSQL a session-level
advisory lock keyed by the action does: a second delivery of the same step (a redelivered or swept task), or a
step of another rollback reaching the same action, waits its turn instead of calling the integrator alongside.
The database drops the lock with the connection, so a worker killed mid-step leaves nothing held. SQLite runs
one writer at a time anyway and has no such locks; there the idempotency keys alone make repeats safe.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection

# Keys in the advisory-lock space that name actions: a fixed high prefix keeps them apart from other users.
_ACTION_KEY_PREFIX = 0x52424B << 40


@contextmanager
def claim_actions(action_ids: Iterable[int]) -> Iterator[set[int]]:
    """Yields the actions this process now holds (those no other session holds); released on leaving the block.
    One query to take them all and one to give them back, whatever their number."""
    wanted = sorted(set(action_ids))
    if connection.vendor != "postgresql" or not wanted:
        yield set(wanted)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT key, pg_try_advisory_lock(key) FROM unnest(%s::bigint[]) AS key",
            [[_ACTION_KEY_PREFIX + action_id for action_id in wanted]],
        )
        held = {key - _ACTION_KEY_PREFIX for key, taken in cursor.fetchall() if taken}
    try:
        yield held
    finally:
        if held:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(key) FROM unnest(%s::bigint[]) AS key",
                    [[_ACTION_KEY_PREFIX + action_id for action_id in sorted(held)]],
                )
