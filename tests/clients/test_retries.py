"""When the client retries and when it does not, without a server: answers scripted by httpx.MockTransport."""

from collections.abc import Callable

import httpx
import pytest
from rollback_console_client import Conflict, InvalidRequest, RollbackConsole, ServerUnavailable


def scripted(*answers: int | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    sent: list[httpx.Request] = []
    remaining = list(answers)

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        outcome = remaining.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome, json={"detail": f"status {outcome}", "results": []})

    return httpx.MockTransport(answer), sent


def console(transport: httpx.MockTransport, slept: list[float], **options: float) -> RollbackConsole:
    sleep: Callable[[float], None] = slept.append
    return RollbackConsole("http://console.test", "t0ken", transport=transport, sleep=sleep, **options)  # type: ignore[arg-type]


def test_5xx_429_and_refused_connections_are_retried_with_growing_delays() -> None:
    transport, sent = scripted(httpx.ConnectError("refused"), 503, 429, 200)
    slept: list[float] = []
    assert console(transport, slept, backoff=1.0).action_types() == []
    assert len(sent) == 4
    assert 0.5 <= slept[0] <= 1.0 and 1.0 <= slept[1] <= 2.0 and 2.0 <= slept[2] <= 4.0


def test_a_retry_after_header_sets_the_delay() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if len(sent) == 1:
            return httpx.Response(429, headers={"Retry-After": "7"})
        return httpx.Response(200, json={"results": []})

    slept: list[float] = []
    console(httpx.MockTransport(answer), slept).action_types()
    assert slept == [7.0]


def test_the_last_failure_is_raised_once_the_attempts_are_spent() -> None:
    transport, sent = scripted(500, 500, 500)
    with pytest.raises(ServerUnavailable) as failed:
        console(transport, [], max_attempts=3).action_types()
    assert failed.value.status == 500
    assert len(sent) == 3


def test_a_conflict_and_a_bad_request_are_not_retried() -> None:
    for status, error in ((409, Conflict), (400, InvalidRequest)):
        transport, sent = scripted(status, 200)
        with pytest.raises(error):
            console(transport, []).get_rollback(1)
        assert len(sent) == 1


def test_a_customer_request_keeps_its_idempotency_key_across_retries() -> None:
    transport, sent = scripted(502, 201)
    console(transport, []).request_customer_rollback([17], "customer asked")
    keys = [request.headers["Idempotency-Key"] for request in sent]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0].startswith("customer-request-")


def test_naive_times_are_refused_before_anything_is_sent() -> None:
    from datetime import datetime

    transport, sent = scripted(201)
    with pytest.raises(ValueError, match="UTC offset"):
        console(transport, []).record_action(
            external_id="x",
            action_type="refund.issue",
            subject="s",
            executed_at=datetime(2026, 12, 1, 10, 0),
            approved_by="alice",
            approved_at=datetime(2026, 12, 1, 9, 59),
        )
    assert sent == []
