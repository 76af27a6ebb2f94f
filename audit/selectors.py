"""Reads of the audit trail, and who may make them."""

from typing import Any

from django.db.models import Q, QuerySet

from audit.models import AuditEvent, AuditLink

# The contract's role names (Django groups). The audit app imports no other app of ours, so they are spelled here:
# the auditor, and every role that signs or reviews (they read the chain of what they sign).
TRAIL_READER_ROLES = frozenset(
    {
        "auditor",
        "reviewer",
        "verifier",
        "customer_service",
        "incident_commander",
        "policy_owner",
        "legal",
        "executive",
    }
)


def may_read_trail(user: Any) -> bool:
    if user is None or not user.is_authenticated:
        return False
    return bool(user.groups.filter(name__in=TRAIL_READER_ROLES).exists())


def audit_events(
    *,
    action_id: int | None = None,
    rollback_id: int | None = None,
    kind: str | None = None,
    after_seq: int | None = None,
) -> QuerySet[AuditEvent]:
    """The trail in seq order, narrowed by the given filters.

    An action's events include those of every rollback that covered it; a rollback's include its actions' own
    records (those written outside any rollback: recorded, linked), not what other rollbacks did to them.
    A `kind` ending in "." matches every kind under it (`rollback.step.`)."""
    events = AuditEvent.objects.all()
    if action_id is not None:
        # The linked ids are few; listing them lets PostgreSQL use both indexes instead of scanning the trail.
        rollback_ids = list(AuditLink.objects.filter(action_id=action_id).values_list("rollback_id", flat=True))
        events = events.filter(Q(action_id=action_id) | Q(rollback_id__in=rollback_ids))
    if rollback_id is not None:
        action_ids = list(AuditLink.objects.filter(rollback_id=rollback_id).values_list("action_id", flat=True))
        events = events.filter(Q(rollback_id=rollback_id) | Q(action_id__in=action_ids, rollback_id__isnull=True))
    if kind:
        events = events.filter(kind__startswith=kind) if kind.endswith(".") else events.filter(kind=kind)
    if after_seq is not None:
        events = events.filter(seq__gt=after_seq)
    return events.order_by("seq")


def latest_audit_events(
    *, action_id: int | None = None, rollback_id: int | None = None, limit: int
) -> list[AuditEvent]:
    """The newest `limit` events of an action's or a rollback's trail (as `audit_events` narrows it), oldest
    first; for a reader the caller has already let see that action or rollback (a page shows this much of it)."""
    return list(reversed(audit_events(action_id=action_id, rollback_id=rollback_id).order_by("-seq")[:limit]))
