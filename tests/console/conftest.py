"""Helpers for the console tests: actions recorded and rollbacks filed through the real services, and browsers
(Django test clients) that check CSRF like a real one does."""

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from actions.models import Action
from actions.services import record_action
from audit.models import AuditEvent
from rollbacks.models import RemediationTask, Rollback, SignOff, Step
from rollbacks.services import request_rollback, sign_off

_ids = itertools.count(1)


def record(
    integrator: Any,
    action_type: str = "refund.issue",
    *,
    approved_by: str = "alice",
    executed_at: datetime | None = None,
    caused_by: tuple[str, ...] = (),
    amount: str = "25.00",
    subject: str = "customer:1001",
) -> Action:
    executed_at = executed_at or timezone.now() - timedelta(hours=1)
    action, _ = record_action(
        integrator,
        {
            "external_id": f"console-{next(_ids)}",
            "action_type": action_type,
            "subject": subject,
            "payload": {"amount": amount, "currency": "EUR"},
            "executed_at": executed_at.isoformat(),
            "approved_by": approved_by,
            "approved_at": (executed_at - timedelta(seconds=30)).isoformat(),
            "approval_context": {"ticket": "T-9"},
            "caused_by": list(caused_by),
        },
    )
    return action


@pytest.fixture
def browser_for(cast) -> Callable[[Any], Client]:  # type: ignore[no-untyped-def]
    """A test client signed in as `user` (None: anonymous) that enforces CSRF like a browser's requests."""

    def make(user: Any) -> Client:
        client = Client(enforce_csrf_checks=True)
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def no_workers() -> Iterator[list[int]]:
    """Rollbacks authorized during the test are handed to this list instead of the workers."""
    queued: list[int] = []
    import rollbacks.tasks as tasks

    with mock.patch.object(tasks.run_rollback_task, "delay", side_effect=queued.append):
        yield queued


@pytest.fixture
def reviewer_error(cast) -> Rollback:  # type: ignore[no-untyped-def]
    """bob flags alice's refund as a reviewer error; it waits for a verifier."""
    action = record(cast.shop)
    return request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="refund was approved by mistake", actions=[action.pk]
    )


def incident_commander(username: str) -> Any:
    """A second incident commander: the cast has one, and nobody signs what they filed."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username)
    user.groups.add(Group.objects.get(name="incident_commander"))
    return user


def csrf_token(client: Client, url: str) -> str:
    """The token a page's form carries, as a browser would read it before posting."""
    client.get(url)
    return client.cookies["csrftoken"].value


def snapshot() -> tuple[int, ...]:
    """Row counts of everything a console page could change."""
    return (
        AuditEvent.objects.count(),
        Rollback.objects.count(),
        SignOff.objects.count(),
        Step.objects.count(),
        Action.objects.count(),
        tuple(Rollback.objects.order_by("pk").values_list("state", flat=True)),
    )


@pytest.fixture
def shop_answers_ok() -> Iterator[None]:
    """The integrator answers every phase, notification and event with ok (no HTTP leaves the test)."""
    answer = (200, b'{"status": "ok"}')
    with (
        mock.patch("policies.methods.webhook.post_signed", return_value=answer),
        mock.patch("rollbacks.communications.post_signed", return_value=answer),
        mock.patch("rollbacks.events.post_signed", return_value=answer),
    ):
        yield


@pytest.fixture
def eager_workers(settings, shop_answers_ok) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Celery tasks run at once in the caller, mail stays in memory: execution without a worker."""
    from rollback_console.celery import app

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    previous = app.conf.task_always_eager
    # The app reads Django's settings under the CELERY_ namespace: celery 5.6 ignores `app.conf.task_always_eager
    # = ...`, so the key is written with it.
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=previous)


def run_to_rest(rollback_id: int, capture: Any) -> Rollback:
    """Run an authorized rollback until no step can move (commit callbacks executed as they are queued)."""
    from rollbacks.execution import run_rollback

    with capture(execute=True):
        run_rollback(rollback_id)
    return Rollback.objects.get(pk=rollback_id)


@pytest.fixture
def ivan(cast):  # type: ignore[no-untyped-def]
    return incident_commander("ivan")


@pytest.fixture
def task(cast, ivan, eager_workers, django_capture_on_commit_callbacks) -> RemediationTask:
    """ines files an incident over a wire transfer, ivan signs it; the transfer waits for a person."""
    wire = record(cast.shop, "wire.transfer", amount="900.00")
    rollback = request_rollback(requester=cast.ines, trigger="incident", reason="wrong payee", actions=[wire.pk])
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=ivan, decision="approve")
    run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    return RemediationTask.objects.get()
