"""Helpers for the audit tests: events written through the real services, and a superuser's tampering
(triggers disabled) to prove the verifier catches what the database itself no longer refuses."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit.chain import GENESIS_HASH, event_hash, format_at
from audit.models import AuditChainHead, AuditEvent
from audit.services import EventSpec, record_events

postgres_only = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL (triggers, roles, snapshots)"),
]
# The suite connects as the application role, which cannot switch the triggers off: these tests play the owner.
superuser_tampering = [*postgres_only, pytest.mark.database_owner]

# Data that exercises every escape: COPY's (backslash, tab, newline) and JSON's (quotes, control characters).
AWKWARD_DATA = {"reason": 'customer said "no"\tthen\\left\nagain', "note": "café ☃ \u0001", "amount": "25.00"}


def record(
    count: int,
    *,
    kind: str = "action.recorded",
    actor: str = "shop",
    action_id: int | None = None,
    rollback_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> list[AuditEvent]:
    """Append `count` events in one transaction, as a service would."""
    specs = [
        EventSpec(kind=kind, actor=actor, action_id=action_id, rollback_id=rollback_id, data={"n": n, **(data or {})})
        for n in range(count)
    ]
    with transaction.atomic():
        return record_events(specs)


def head() -> tuple[int, str]:
    chain_head = AuditChainHead.objects.get(pk=1)
    return chain_head.seq, chain_head.hash


@contextmanager
def triggers_disabled() -> Iterator[None]:
    """What a database superuser can do: switch the append-only triggers off, then back on as they were."""
    with connection.cursor() as cursor:
        for table in _GUARDED:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for table, triggers in _GUARDED.items():
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
                for trigger in triggers:
                    cursor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")


_GUARDED = {
    "audit_auditevent": ("audit_auditevent_no_change", "audit_auditevent_no_truncate"),
    "audit_auditchainhead": ("audit_auditchainhead_forward", "audit_auditchainhead_no_truncate"),
}


def rehash_from(seq: int) -> None:
    """Recompute every hash from `seq` on and move the head: a rewrite the chain alone cannot reveal."""
    previous = AuditEvent.objects.filter(seq=seq - 1).values_list("hash", flat=True).first() or GENESIS_HASH
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        digest = event_hash(
            event.seq,
            format_at(event.at),
            event.actor,
            event.kind,
            event.action_id,
            event.rollback_id,
            event.data,
            previous,
        )
        AuditEvent.objects.filter(seq=event.seq).update(prev_hash=previous, hash=digest)
        previous = digest
    last = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    AuditChainHead.objects.filter(pk=1).update(seq=last, hash=previous)


@pytest.fixture(autouse=True)
def _anchors_in_a_temporary_file(tmp_path, settings):  # type: ignore[no-untyped-def]
    """Verifications write checkpoints out as anchors: never into the project's own var/ from a test."""
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors" / "audit.jsonl")
    settings.AUDIT_ANCHOR_URL = ""


@pytest.fixture
def client_for(cast) -> Callable[[Any], APIClient]:  # type: ignore[no-untyped-def]
    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
