"""Helpers for the request, sign-off and cancel tests: actions recorded through the real service, the queue of
rollbacks handed to the workers, and audit assertions."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.utils import timezone

from actions.models import Action
from actions.services import record_action
from audit.models import AuditEvent

_counter = iter(range(1, 10**9))


def record(
    integrator: Any,
    action_type: str = "refund.issue",
    *,
    approved_by: str = "alice",
    executed_at: datetime | None = None,
    caused_by: tuple[str, ...] = (),
    external_id: str | None = None,
) -> Action:
    """An action recorded through actions.services, as an integrator posts it."""
    executed_at = executed_at or timezone.now() - timedelta(hours=1)
    action, _ = record_action(
        integrator,
        {
            "external_id": external_id or f"run-{next(_counter)}",
            "action_type": action_type,
            "subject": "customer:1001",
            "payload": {"amount": "25.00", "currency": "EUR"},
            "executed_at": executed_at.isoformat(),
            "approved_by": approved_by,
            "approved_at": (executed_at - timedelta(seconds=30)).isoformat(),
            "caused_by": list(caused_by),
        },
    )
    return action


@contextmanager
def capturing_queue() -> Iterator[list[int]]:
    """Every rollback id handed to rollbacks.tasks.run_rollback.delay while inside (thread-safe: list.append)."""
    from rollbacks import tasks

    queued: list[int] = []
    with mock.patch.object(tasks.run_rollback_task, "delay", side_effect=queued.append):
        yield queued


def events(kind: str | None = None, **filters: Any) -> list[AuditEvent]:
    found = AuditEvent.objects.filter(**filters)
    if kind is not None:
        found = found.filter(kind=kind)
    return list(found.order_by("seq"))


def assert_audit_event(kind: str, **filters: Any) -> AuditEvent:
    found = events(kind, **filters)
    assert found, f"no {kind} event with {filters}; kinds: {[e.kind for e in events(**filters)]}"
    return found[-1]


def colleague(username: str, *roles: str) -> Any:
    """Another holder of these roles, beside the cast (a second policy owner, a second legal counsel ...)."""
    from django.contrib.auth.models import Group, User

    user, _ = User.objects.get_or_create(username=username)
    user.groups.set(Group.objects.filter(name__in=roles))
    return user
