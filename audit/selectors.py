"""Reads of the audit trail, and who may make them."""

from dataclasses import dataclass
from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.module_loading import import_string

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


@dataclass(frozen=True)
class TrailScope:
    """The part of the trail a reader who is not an auditor may see: events tied to neither an action nor a
    rollback, an action's own events (outside any rollback) when the action is in `action_ids`, and a rollback's
    events when it is in `rollback_ids`. Each is a query of ids (run as a subquery, never read into a list), or
    None for every one. The audit app knows neither model: the app that owns them says who sees which."""

    action_ids: QuerySet[Any] | None
    rollback_ids: QuerySet[Any] | None

    def as_filter(self) -> Q:
        unscoped = Q(action_id__isnull=True, rollback_id__isnull=True)
        of_actions = Q(rollback_id__isnull=True)
        if self.action_ids is not None:
            of_actions &= Q(action_id__in=self.action_ids)
        of_rollbacks = Q(rollback_id__isnull=False)
        if self.rollback_ids is not None:
            of_rollbacks &= Q(rollback_id__in=self.rollback_ids)
        return unscoped | of_actions | of_rollbacks


def trail_scope_for(user: Any) -> TrailScope | None:
    """What of the trail `user` may read (None: all of it), as the callable named by settings.AUDIT_TRAIL_SCOPE
    decides: the app that owns actions and rollbacks, wired in by configuration as authentication backends are,
    so the audit app still imports none of ours. Unset, nobody is given a scope: fail closed to events tied to
    neither an action nor a rollback."""
    path = getattr(settings, "AUDIT_TRAIL_SCOPE", "")
    if not path:
        nothing = AuditLink.objects.none()
        return TrailScope(action_ids=nothing.values("action_id"), rollback_ids=nothing.values("rollback_id"))
    scope: TrailScope | None = import_string(path)(user)
    return scope


def audit_events(
    *,
    action_id: int | None = None,
    rollback_id: int | None = None,
    kind: str | None = None,
    after_seq: int | None = None,
    scope: TrailScope | None = None,
) -> QuerySet[AuditEvent]:
    """The trail in seq order, narrowed by the given filters and, for a reader who is not an auditor, by
    `scope` (`trail_scope_for`; None reads everything).

    An action's events include those of every rollback that covered it; a rollback's include its actions' own
    records (those written outside any rollback: recorded, linked), not what other rollbacks did to them.
    A `kind` ending in "." matches every kind under it (`rollback.step.`)."""
    events = AuditEvent.objects.all()
    if scope is not None:
        events = events.filter(scope.as_filter())
    if action_id is not None:
        events = _of_action(events, action_id)
    if rollback_id is not None:
        events = _of_rollback(events, rollback_id)
    if kind:
        events = _of_kind(events, kind)
    if after_seq is not None:
        events = events.filter(seq__gt=after_seq)
    return events.order_by("seq")


def _of_action(events: QuerySet[AuditEvent], action_id: int) -> QuerySet[AuditEvent]:
    # The linked ids are few; listing them lets PostgreSQL use both indexes instead of scanning the trail.
    rollback_ids = list(AuditLink.objects.filter(action_id=action_id).values_list("rollback_id", flat=True))
    return events.filter(Q(action_id=action_id) | Q(rollback_id__in=rollback_ids))


def _of_rollback(events: QuerySet[AuditEvent], rollback_id: int) -> QuerySet[AuditEvent]:
    action_ids = list(AuditLink.objects.filter(rollback_id=rollback_id).values_list("action_id", flat=True))
    return events.filter(Q(rollback_id=rollback_id) | Q(action_id__in=action_ids, rollback_id__isnull=True))


def _of_kind(events: QuerySet[AuditEvent], kind: str) -> QuerySet[AuditEvent]:
    return events.filter(kind__startswith=kind) if kind.endswith(".") else events.filter(kind=kind)


LARGEST_ID = 2**63 - 1  # PostgreSQL's bigint: a larger filter value would be a database error, not an empty page


class _IdFilter(django_filters.Filter):  # type: ignore[misc]  # django-filter ships no types
    """A whole number (Django's NumberFilter takes decimals, which no id or seq is)."""

    field_class = forms.IntegerField


class AuditEventFilter(django_filters.FilterSet):  # type: ignore[misc]  # django-filter ships no types
    """The filters of the trail's list, with the meanings `audit_events` gives them; an empty value filters
    nothing. Filter the queryset of `audit_events(scope=...)`, so the reader's scope applies first."""

    action = _IdFilter(
        method="_action", min_value=1, max_value=LARGEST_ID, help_text="an action's events and its rollbacks'"
    )
    rollback = _IdFilter(
        method="_rollback", min_value=1, max_value=LARGEST_ID, help_text="a rollback's events and its actions' records"
    )
    kind = django_filters.CharFilter(
        method="_kind", max_length=64, help_text='an event kind; ending in "." matches every kind under it'
    )
    after_seq = _IdFilter(
        field_name="seq",
        lookup_expr="gt",
        min_value=0,
        max_value=LARGEST_ID,
        help_text="only events after this seq (to page forward)",
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "rollback", "kind", "after_seq"]

    def _action(self, events: QuerySet[AuditEvent], name: str, value: int) -> QuerySet[AuditEvent]:
        return _of_action(events, value)

    def _rollback(self, events: QuerySet[AuditEvent], name: str, value: int) -> QuerySet[AuditEvent]:
        return _of_rollback(events, value)

    def _kind(self, events: QuerySet[AuditEvent], name: str, value: str) -> QuerySet[AuditEvent]:
        return _of_kind(events, value)


def latest_audit_events(
    *, action_id: int | None = None, rollback_id: int | None = None, scope: TrailScope | None, limit: int
) -> list[AuditEvent]:
    """The newest `limit` events of an action's or a rollback's trail (as `audit_events` narrows it, `scope`
    included), oldest first; for a reader the caller has already let see that action or rollback (a page shows
    this much of it). `scope` has no default: every page says whose trail it shows."""
    events = audit_events(action_id=action_id, rollback_id=rollback_id, scope=scope)
    return list(reversed(events.order_by("-seq")[:limit]))


@dataclass(frozen=True)
class TrailPage:
    """A page of a trail, newest first: `older` is the cursor (`before=`) of the page after it, None at the end."""

    events: list[AuditEvent]
    older: int | None
    newest: bool


def trail_page(
    *,
    action_id: int | None = None,
    rollback_id: int | None = None,
    scope: TrailScope | None,
    before: int | None,
    size: int,
) -> TrailPage:
    """`size` events of an action's or a rollback's trail (as `audit_events` narrows it) with seq below `before`
    (None: the newest), newest first; for a reader the caller has already let see that action or rollback. A
    cursor, not a page number, so no page counts the trail."""
    events = audit_events(action_id=action_id, rollback_id=rollback_id, scope=scope)
    if before is not None:
        events = events.filter(seq__lt=before)
    rows = list(events.order_by("-seq")[: size + 1])
    older = rows[size - 1].seq if len(rows) > size else None
    return TrailPage(events=rows[:size], older=older, newest=before is None)
