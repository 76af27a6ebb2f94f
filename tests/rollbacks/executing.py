"""Fixtures for the execution tests: a policy whose integrator is a scripted fake, rollbacks requested and signed
through the real services, and a synchronous worker that runs what the services queue, as Celery would."""

import json
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from actions.models import Action
from actions.services import add_links
from policies.methods.base import PhaseResult, ReversalCall
from policies.selectors import current_policy
from policies.services import load_policy
from rollbacks import communications, execution, services, tasks
from rollbacks.models import Rollback
from tests.conftest import DEMO_MANIFEST
from tests.rollbacks.requesting import record

# The demo policy with its python handlers pointing at the fake below and one manual-method action type.
TEST_MANIFEST = (
    DEMO_MANIFEST.read_text()
    .replace('version = "demo-2026-11"', 'version = "execution-tests"')
    .replace("demo_shop.handlers.", "tests.rollbacks.executing.")
    + """
[action_types."letter.send"]
reversibility = "full"
reversal = { method = "manual", instructions = "Call the customer and withdraw the letter." }
"""
)


class WorkerKilled(BaseException):
    """Raised by the fake to stop a step the way a killed worker would: nothing after it runs."""


@dataclass
class FakeIntegrator:
    """The shop as the workers see it: answers per (operation, phase) and per notification template, scripted
    as a list used up one answer per call (the last one repeats), `ok` when nothing is scripted."""

    answers: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (operation, phase, external_id)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    effects: Counter = field(default_factory=Counter)  # reverse calls that took effect, per idempotency key

    def script(self, operation: str, phase: str, *answers: Any) -> None:
        self.answers[(operation, phase)] = list(answers)

    def _next(self, key: tuple[str, str]) -> Any:
        queue = self.answers.get(key)
        if not queue:
            return (200, {"status": "ok"})
        return queue.pop(0) if len(queue) > 1 else queue[0]

    def answer(self, operation: str, phase: str, external_id: str, idempotency_key: str) -> tuple[int, dict]:
        self.calls.append((operation, phase, external_id))
        answer = self._next((operation, phase))
        if isinstance(answer, BaseException):
            raise answer
        status, body = answer
        if phase == "reverse" and status == 200 and body.get("status") == "ok":
            self.effects[idempotency_key] += 1
        return status, body

    def post_signed(self, url: str, payload: Any, secret: str, idempotency_key: str) -> tuple[int, bytes]:
        assert secret, "calls are signed with the integrator's secret"
        if payload.get("event") == "rollback.notification":
            status, body = self._next(("notify", payload["template"]))
            if 200 <= status < 300:
                self.notifications.append({**payload, "idempotency_key": idempotency_key})
            return status, json.dumps(body).encode()
        status, body = self.answer(
            payload["operation"], payload["phase"], payload["action"]["external_id"], idempotency_key
        )
        return status, json.dumps(body).encode()

    def phases(self, external_id: str) -> list[str]:
        return [phase for _, phase, seen in self.calls if seen == external_id]

    def reversed_ids(self) -> list[str]:
        return [external_id for _, phase, external_id in self.calls if phase == "reverse"]


_fake: FakeIntegrator | None = None


def _python_handler(operation: str) -> Callable[[ReversalCall], PhaseResult]:
    def handler(call: ReversalCall) -> PhaseResult:
        assert _fake is not None, "the python handlers answer only inside the execution tests"
        key = f"step-{call.step_id}-{call.phase}"
        status, body = _fake.answer(operation, call.phase, str(call.action["external_id"]), key)
        if status >= 500:
            return PhaseResult(status="failed", detail=f"HTTP {status}", retryable=True)
        return PhaseResult(status=body["status"], unmet=tuple(body.get("unmet", ())), detail=body.get("detail", ""))

    return handler


restore_benefits = _python_handler("benefits.restore")
suspend_membership = _python_handler("membership.suspend")
restore_record = _python_handler("record.restore")


@pytest.fixture(name="shop")
def shop_fixture(monkeypatch, cast) -> Iterator[FakeIntegrator]:
    """The fake integrator, wired in place of the HTTP calls, under the test policy."""
    global _fake
    fake = FakeIntegrator()
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", "test-shop-secret")
    monkeypatch.setattr("policies.methods.webhook.post_signed", fake.post_signed)
    monkeypatch.setattr(communications, "post_signed", fake.post_signed)
    load_policy(TEST_MANIFEST, actor="test-setup")
    _fake = fake
    yield fake
    _fake = None


@dataclass
class SyncWorker:
    """Runs what the services hand to Celery, in order, in this process: the tasks' own glue, minus the broker."""

    queue: deque = field(default_factory=deque)
    delays: list[float] = field(default_factory=list)

    def drain(self, capture: Any, limit: int = 500) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            kind, argument = self.queue.popleft()
            with capture(execute=True):
                if kind == "rollback":
                    execution.run_rollback(argument)
                elif kind == "steps":
                    for delay, step_ids in execution.run_steps(argument).retries.items():
                        self.delays.append(delay)
                        self.queue.append(("steps", step_ids))
                else:
                    delivery = communications.send_communication(argument)
                    if delivery is not None and delivery.retry_in is not None:
                        self.delays.append(delivery.retry_in)
                        self.queue.append(("communication", argument))
                    elif delivery is not None:
                        execution.run_rollback(delivery.rollback_id)
        raise AssertionError("the worker never ran out of work")


@pytest.fixture(name="worker")
def worker_fixture(monkeypatch, django_capture_on_commit_callbacks) -> Iterator[Callable[[], None]]:
    """`worker()` runs everything queued so far, and what that queues, until nothing is left."""
    sync = SyncWorker()
    monkeypatch.setattr(tasks.run_rollback_task, "delay", lambda pk: sync.queue.append(("rollback", pk)))
    monkeypatch.setattr(tasks.execute_steps_task, "delay", lambda ids: sync.queue.append(("steps", list(ids))))
    monkeypatch.setattr(tasks.send_communication_task, "delay", lambda pk: sync.queue.append(("communication", pk)))

    def run() -> None:
        sync.drain(django_capture_on_commit_callbacks)

    run.sync = sync  # type: ignore[attr-defined]
    yield run


def chain(integrator: Any, *action_types: str, prefix: str = "a") -> list[Action]:
    """Actions each caused by the one before, as an agent's run records them."""
    actions: list[Action] = []
    for index, action_type in enumerate(action_types):
        caused_by = (actions[-1].external_id,) if actions else ()
        actions.append(record(integrator, action_type, caused_by=caused_by, external_id=f"{prefix}-{index}"))
    return actions


def link(cause: Action, *effects: Action) -> None:
    """`cause` turns out to have caused `effects` too (the links endpoint's service); may close a cycle."""
    add_links(cause, [effect.external_id for effect in effects], actor="shop")


def authorized(
    cast: Any,
    capture: Any,
    targets: list[Action],
    *,
    trigger: str = "customer_request",
    depth: int | None = None,
) -> Rollback:
    """A rollback requested and signed off through the real services; its execution is queued on commit."""
    if trigger == "customer_request":
        requester, signers = cast.shop, [cast.carl]
    elif trigger == "reviewer_error":
        requester, signers = cast.bob, [cast.vera]
    else:
        raise ValueError(trigger)
    rollback = services.request_rollback(
        requester=requester,
        trigger=trigger,
        reason="the approval was wrong",
        actions=[action.pk for action in targets],
        max_cascade_depth=depth,
    )
    with capture(execute=True):
        for signer in signers:
            services.sign_off(rollback.pk, signer=signer, decision="approve")
    rollback.refresh_from_db()
    assert current_policy()[0] == rollback.policy_version_id
    return rollback
