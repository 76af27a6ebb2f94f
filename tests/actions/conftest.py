"""Helpers for the actions tests: bodies as an integrator posts them, and API clients for the cast."""

import itertools
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from actions.models import Action
from actions.services import record_action
from audit.models import AuditEvent

_ids = itertools.count(1)


def action_body(**overrides: Any) -> dict[str, Any]:
    """A valid refund, with a fresh external id unless one is given."""
    body = {
        "external_id": f"run-{next(_ids)}/refund",
        "action_type": "refund.issue",
        "subject": "customer:1001",
        "payload": {"amount": "25.00", "currency": "EUR"},
        "executed_at": "2026-11-28T10:00:00Z",
        "approved_by": "alice",
        "approved_at": "2026-11-28T09:59:30Z",
        "approval_context": {"ticket": "T-9"},
        "caused_by": [],
    }
    if "executed_at" in overrides and "approved_at" not in overrides:
        body["approved_at"] = overrides["executed_at"]  # an approval after the execution is refused
    body.update(overrides)
    return body


@pytest.fixture
def body() -> Callable[..., dict[str, Any]]:
    return action_body


@pytest.fixture
def client_for(cast) -> Callable[[Any], APIClient]:  # type: ignore[no-untyped-def]
    """An API client signed in as a member of the cast (`client_for(cast.shop)`), or anonymous for None."""

    def make(user: Any) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def recorded(cast) -> Callable[..., Action]:  # type: ignore[no-untyped-def]
    """Record an action through the real service: `recorded(external_id="a", caused_by=["b"])`."""

    def make(integrator: Any = None, **overrides: Any) -> Action:
        action, created = record_action(integrator or cast.shop, action_body(**overrides))
        assert created
        return action

    return make


def audit_events(kind: str, **filters: Any) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind=kind, **filters).order_by("seq"))
