"""Counts read at scrape time for GET /metrics (rollback_console/metrics.py): what the database says now, so web
processes and workers need not share memory. One query per function, whatever the number of rows."""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db.models import Count, Q

from audit.models import AuditChainHead
from rollbacks.models import (
    NEEDS_PERSON_OUTCOMES,
    Communication,
    CommunicationStatus,
    IntegratorEvent,
    RemediationTask,
    Rollback,
    RollbackState,
    Step,
    StepOutcome,
)


def _by(rows: Iterable[Mapping[str, Any]], key: str, names: list[str]) -> dict[str, int]:
    """Every known name (0 when absent, so a series never vanishes), and any other the rows hold."""
    found = {str(row[key]): int(row["count"]) for row in rows}
    return {name: 0 for name in names} | found


def steps_by_outcome() -> dict[str, int]:
    rows = list(Step.objects.order_by().values("outcome").annotate(count=Count("id")))
    return _by(rows, "outcome", list(StepOutcome.values))


def rollbacks_by_state() -> dict[str, int]:
    rows = list(Rollback.objects.order_by().values("state").annotate(count=Count("id")))
    return _by(rows, "state", list(RollbackState.values))


def messages_by_status() -> dict[tuple[str, str], int]:
    """Communications and integrator events by status, {("communication", "sent"): n, ...}: two queries."""
    counts: dict[tuple[str, str], int] = {}
    for kind, model in (("communication", Communication), ("integrator_event", IntegratorEvent)):
        for status in CommunicationStatus.values:
            counts[(kind, status)] = 0
        for row in model.objects.order_by().values("status").annotate(count=Count("id")):
            counts[(kind, str(row["status"]))] = int(row["count"])
    return counts


def audit_head_seq() -> int:
    head = AuditChainHead.objects.order_by("pk").values_list("seq", flat=True).first()
    return int(head or 0)


def inbox_sizes() -> dict[str, int]:
    """What waits for a person: requests awaiting sign-off, paused rollbacks, steps needing a person, open
    remediation tasks. Plain counts (not per person: whose inbox it is depends on roles, a page's question)."""
    rollbacks = Rollback.objects.aggregate(
        pending_signoff=Count("id", filter=Q(state=RollbackState.PENDING_AUTHORIZATION)),
        paused=Count("id", filter=Q(state=RollbackState.PAUSED)),
    )
    return {
        "pending_signoff": int(rollbacks["pending_signoff"]),
        "paused_rollbacks": int(rollbacks["paused"]),
        "steps_needing_person": Step.objects.filter(outcome__in=NEEDS_PERSON_OUTCOMES).count(),
        "open_remediation_tasks": RemediationTask.objects.filter(done_at__isnull=True).count(),
    }
