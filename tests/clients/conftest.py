"""The client against a live server: tokens from the real `issue_token` service, the cast from tests/conftest.py."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from itertools import count
from typing import Any

import pytest
from django.utils import timezone
from rollback_console_client import RollbackConsole

from rollback_console.authentication import issue_token

_ids = count(1)


@pytest.fixture
def console_for(live_server: Any, transactional_db: None, cast: Any) -> Iterator[Callable[..., RollbackConsole]]:
    """`console_for(cast.shop)`: a client holding a fresh token of that user, pointed at the live server."""
    clients: list[RollbackConsole] = []

    def make(user: Any, **options: Any) -> RollbackConsole:
        _, token = issue_token(user, expires=timedelta(days=1), actor="test-setup")
        client = RollbackConsole(live_server.url, token, **{"sleep": lambda seconds: None, **options})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def refund(**overrides: Any) -> dict[str, Any]:
    """A refund as `record_action` takes it, executed an hour ago, with a fresh external id."""
    executed = timezone.now() - timedelta(hours=1)
    fields: dict[str, Any] = {
        "external_id": f"agent-run-{next(_ids)}/refund",
        "action_type": "refund.issue",
        "subject": "customer:1001",
        "executed_at": executed,
        "approved_by": "alice",
        "approved_at": executed - timedelta(seconds=30),
        "payload": {"amount": "25.00", "currency": "EUR"},
    }
    fields.update(overrides)
    return fields
