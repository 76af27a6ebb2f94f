"""Integrators are told: each decision and ending of a rollback of their actions reaches their `events_url`,
signed, once, in order, and a receiver that fails never holds the rollback back.

The events travel through the real `post_signed` and the demo shop's real receiver (urllib is routed to the test
client); reversals and notifications go to the scripted fake of the execution tests."""

import io
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client

from demo_shop.models import ReceivedEvent
from policies.methods.webhook import verify_signature
from policies.services import load_policy
from rollback_console.errors import Forbidden
from rollbacks import events, services, tasks
from rollbacks.models import IntegratorEvent, Rollback
from tests.conftest import DEMO_MANIFEST
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import assert_audit_event, record

pytestmark = pytest.mark.django_db
SECRET = "test-shop-secret"


@dataclass
class Receiver:
    """The shop's events_url as the workers reach it: every request seen, and answers to script before the
    shop's own (an int is an HTTP status, an exception is raised as urllib would)."""

    client: Client
    seen: list[dict[str, Any]] = field(default_factory=list)
    scripted: list[Any] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)

    def urlopen(self, request: Any, timeout: float | None = None) -> Any:
        headers = dict(request.header_items())
        self.seen.append({"url": request.full_url, "headers": headers, "body": request.data})
        if self.scripted:
            answer = self.scripted.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            raise urllib.error.HTTPError(request.full_url, answer, "scripted", {}, io.BytesIO(b"scripted"))  # type: ignore[arg-type]
        response = self.client.post(
            urlsplit(request.full_url).path,
            data=request.data,
            content_type="application/json",
            headers={k: v for k, v in headers.items() if k.lower() != "content-type"},
        )
        if response.status_code >= 400:
            raise urllib.error.HTTPError(request.full_url, response.status_code, "", {}, io.BytesIO(response.content))  # type: ignore[arg-type]
        return _Answer(response.status_code, response.content)

    def deliver(self, limit: int = 50) -> None:
        """Run the queued event tasks as a worker would, a transient failure tried again until it ends."""
        for _ in range(limit):
            if not self.queued:
                return
            rollback_id = self.queued.pop(0)
            retry_in = events.send_integrator_events(rollback_id)
            if retry_in is not None:
                self.delays.append(retry_in)
                self.queued.append(rollback_id)
        raise AssertionError("the events never ran out")

    def names(self, rollback: Rollback) -> list[str]:
        return list(
            ReceivedEvent.objects.filter(rollback_id=rollback.pk).order_by("id").values_list("event", flat=True)
        )


@dataclass
class _Answer:
    status: int
    body: bytes

    def read(self) -> bytes:
        return self.body

    def __enter__(self) -> "_Answer":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.fixture
def receiver(monkeypatch, shop) -> Iterator[Receiver]:
    found = Receiver(client=Client())
    monkeypatch.setattr("urllib.request.urlopen", found.urlopen)
    monkeypatch.setattr(tasks.send_integrator_events_task, "delay", found.queued.append)
    yield found


def _request(cast: Any, capture: Any, *targets: Any) -> Rollback:
    with capture(execute=True):
        return services.request_rollback(
            requester=cast.shop,
            trigger="customer_request",
            reason="the customer asked",
            actions=[t.pk for t in targets],
        )


def test_the_integrator_is_told_of_the_request_the_authorization_and_the_completion_in_order(
    cast, shop, worker, receiver, django_capture_on_commit_callbacks
):
    refund, _ = chain(cast.shop, "refund.issue", "loyalty.points_grant")

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    receiver.deliver()

    rollback.refresh_from_db()
    assert rollback.state == "completed"
    assert receiver.names(rollback) == ["rollback.requested", "rollback.authorized", "rollback.completed"]
    completed = ReceivedEvent.objects.get(rollback_id=rollback.pk, event="rollback.completed").body
    assert completed == {
        "event": "rollback.completed",
        "rollback": {
            "id": rollback.pk,
            "trigger": "customer_request",
            "state": "completed",
            "reason": "the approval was wrong",
            "signoffs": [{"signer": "carl", "role": "customer_service", "decision": "approve", "comment": ""}],
        },
        "actions": ["a-0", "a-1"],
        "idempotency_key": f"event-{rollback.pk}-rollback.completed",
    }
    requested = ReceivedEvent.objects.get(rollback_id=rollback.pk, event="rollback.requested").body
    assert (requested["rollback"]["state"], requested["rollback"]["signoffs"]) == ("pending_authorization", [])
    assert_audit_event("integrator_event.sent", rollback_id=rollback.pk)


def test_every_event_is_signed_with_the_integrators_secret_and_keyed_in_header_and_body(
    cast, shop, receiver, django_capture_on_commit_callbacks
):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    receiver.deliver()

    (call,) = receiver.seen
    assert call["url"] == "http://127.0.0.1:8000/demo-shop/events"
    assert verify_signature(SECRET, call["headers"]["X-rollback-signature"], call["body"])
    assert not verify_signature("another-secret", call["headers"]["X-rollback-signature"], call["body"])
    assert call["headers"]["Idempotency-key"] == f"event-{rollback.pk}-rollback.requested"
    assert ReceivedEvent.objects.get().idempotency_key == f"event-{rollback.pk}-rollback.requested"


def test_a_rejection_tells_the_rejecting_comment(cast, shop, receiver, django_capture_on_commit_callbacks):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_off(rollback.pk, signer=cast.carl, decision="reject", comment="the customer withdrew it")
    receiver.deliver()

    assert receiver.names(rollback) == ["rollback.requested", "rollback.rejected"]
    body = ReceivedEvent.objects.get(event="rollback.rejected").body
    assert body["comment"] == "the customer withdrew it"
    assert body["rollback"]["state"] == "rejected"
    assert body["rollback"]["signoffs"] == [
        {"signer": "carl", "role": "customer_service", "decision": "reject", "comment": "the customer withdrew it"}
    ]


def test_a_cancellation_is_told(cast, shop, receiver, django_capture_on_commit_callbacks):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_rollback(rollback.pk, actor=cast.shop)
    receiver.deliver()

    assert receiver.names(rollback) == ["rollback.requested", "rollback.cancelled"]


def test_each_event_is_sent_once_however_often_its_task_runs(cast, shop, receiver, django_capture_on_commit_callbacks):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    receiver.queued.extend([rollback.pk, rollback.pk])  # a redelivered message, a duplicate task
    receiver.deliver()
    events.send_integrator_events(rollback.pk)

    assert len(receiver.seen) == 1
    assert IntegratorEvent.objects.get().status == "sent"


def test_a_resend_of_a_received_event_is_recognised_by_the_shop(
    cast, shop, receiver, django_capture_on_commit_callbacks
):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    receiver.deliver()
    IntegratorEvent.objects.filter(rollback=rollback).update(status="pending")  # as after a crash before the answer

    receiver.queued.append(rollback.pk)
    receiver.deliver()

    assert ReceivedEvent.objects.get().calls == 2


def test_a_failing_receiver_never_holds_the_rollback_back_and_is_tried_again_with_backoff(
    cast, shop, worker, receiver, django_capture_on_commit_callbacks
):
    receiver.scripted = [503, urllib.error.URLError("refused"), TimeoutError("slow")]
    refund = record(cast.shop)

    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "completed"  # before a single event got through

    receiver.deliver()
    assert receiver.names(rollback) == ["rollback.requested", "rollback.authorized", "rollback.completed"]
    assert receiver.delays == [1.0, 2.0, 4.0]
    assert_audit_event("integrator_event.attempt", rollback_id=rollback.pk)


def test_a_receiver_that_keeps_failing_gives_up_after_the_most_attempts_and_the_next_event_still_goes(
    cast, shop, receiver, django_capture_on_commit_callbacks
):
    receiver.scripted = [500] * settings.NOTIFY_MAX_ATTEMPTS
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    with django_capture_on_commit_callbacks(execute=True):
        services.cancel_rollback(rollback.pk, actor=cast.shop)
    receiver.deliver()

    requested, cancelled = IntegratorEvent.objects.order_by("id")
    assert (requested.status, requested.attempts) == ("failed", settings.NOTIFY_MAX_ATTEMPTS)
    assert cancelled.status == "sent"
    assert_audit_event("integrator_event.failed", rollback_id=rollback.pk)


def test_a_4xx_answer_fails_the_event_at_once(cast, shop, receiver, django_capture_on_commit_callbacks):
    receiver.scripted = [410]
    _request(cast, django_capture_on_commit_callbacks, record(cast.shop))
    receiver.deliver()

    event = IntegratorEvent.objects.get()
    assert (event.status, event.attempts, event.last_error) == ("failed", 1, "HTTP 410: scripted")


def test_a_caller_without_permission_triggers_no_event(cast, shop, receiver, django_capture_on_commit_callbacks):
    rollback = _request(cast, django_capture_on_commit_callbacks, record(cast.shop))

    with pytest.raises(Forbidden), django_capture_on_commit_callbacks(execute=True):
        services.sign_off(rollback.pk, signer=cast.nobody, decision="reject", comment="no")

    assert list(IntegratorEvent.objects.values_list("event", flat=True)) == ["rollback.requested"]


def test_a_policy_without_an_events_url_queues_nothing(cast, receiver, django_capture_on_commit_callbacks):
    load_policy(
        DEMO_MANIFEST.read_text()
        .replace('version = "demo-2026-11"', 'version = "silent"')
        .replace('events_url = "http://127.0.0.1:8000/demo-shop/events"\n', ""),
        actor="test-setup",
    )

    _request(cast, django_capture_on_commit_callbacks, record(cast.shop))

    assert not IntegratorEvent.objects.exists() and not receiver.queued
