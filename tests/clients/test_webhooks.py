"""The client's webhook receiver against what the server really sends: `post_signed` (reversal calls,
notifications and events all go through it) to a receiver built with `WebhookReceiver`."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from rollback_console_client import InMemoryDeliveryStore, InvalidWebhook, WebhookReceiver, sign, verify_signature
from rollback_console_client.webhooks import Delivery

from policies.methods.webhook import post_signed
from policies.methods.webhook import sign as server_sign

SECRET = "whsec-for-the-client-tests"


class Receiver:
    """An integrator's endpoint: every verified delivery's handler call is counted."""

    def __init__(self) -> None:
        self.webhooks = WebhookReceiver(SECRET)
        self.handled: list[Delivery] = []

    def handle(self, delivery: Delivery) -> dict[str, Any]:
        self.handled.append(delivery)
        return {"status": "ok", "handled": len(self.handled)}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                status, answer = 200, state.webhooks.handle(body, dict(self.headers), state.handle)
            except InvalidWebhook as error:
                status, answer = error.status, {"status": "failed", "detail": str(error)}
            encoded = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(encoded)))
            self.end_headers()
            self.wfile.write(encoded)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


REVERSAL = {
    "phase": "reverse",
    "step_id": 7,
    "rollback_id": 3,
    "trigger": "customer_request",
    "operation": "refund.chargeback",
    "action": {"external_id": "run-1", "action_type": "refund.issue", "subject": "customer:1", "payload": {}},
}
EVENT = {
    "event": "rollback.completed",
    "rollback": {"id": 3, "trigger": "customer_request", "state": "completed", "reason": "asked", "signoffs": []},
    "actions": ["run-1"],
}


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (REVERSAL, "step-7-reverse"),
        ({"event": "rollback.notification", "template": "t"}, "notify-4"),
        (EVENT, "event-3-rollback.completed"),
    ],
)
def test_a_delivery_sent_twice_is_handled_once_and_answered_alike(receiver: Any, payload: Any, key: str) -> None:
    state, url = receiver
    first = post_signed(url, payload, SECRET, key)
    again = post_signed(url, payload, SECRET, key)
    assert first[0] == again[0] == 200
    assert json.loads(first[1]) == json.loads(again[1]) == {"status": "ok", "handled": 1}
    assert len(state.handled) == 1
    assert state.handled[0].idempotency_key == key
    assert state.handled[0].body["idempotency_key"] == key


def test_a_call_signed_with_another_secret_is_refused_unhandled(receiver: Any) -> None:
    state, url = receiver
    status, _ = post_signed(url, REVERSAL, "someone-elses-secret", "step-7-reverse")
    assert status == 401
    assert state.handled == []


def test_the_client_signs_exactly_as_the_server_does() -> None:
    body = b'{"idempotency_key":"k"}'
    assert sign(SECRET, body, timestamp=1_800_000_000) == server_sign(SECRET, body, timestamp=1_800_000_000)


def test_a_stale_or_future_signature_is_refused() -> None:
    body = b'{"idempotency_key":"k"}'
    header = sign(SECRET, body, timestamp=1_800_000_000)
    assert verify_signature(SECRET, header, body, now=1_800_000_300)
    assert not verify_signature(SECRET, header, body, now=1_800_000_301)
    assert not verify_signature(SECRET, header, body, now=1_799_999_699)


def test_a_tampered_body_fails_the_signature() -> None:
    webhooks = WebhookReceiver(SECRET)
    header = sign(SECRET, b'{"idempotency_key":"k","amount":"1"}')
    with pytest.raises(InvalidWebhook) as refused:
        webhooks.verify(b'{"idempotency_key":"k","amount":"1000"}', {"X-Rollback-Signature": header})
    assert refused.value.status == 401


def test_a_header_key_that_differs_from_the_signed_one_is_refused() -> None:
    webhooks = WebhookReceiver(SECRET)
    body = b'{"idempotency_key":"step-1-reverse"}'
    headers = {"x-rollback-signature": sign(SECRET, body), "idempotency-key": "step-2-reverse"}
    with pytest.raises(InvalidWebhook) as refused:
        webhooks.verify(body, headers)
    assert refused.value.status == 400


def test_a_signed_body_without_an_idempotency_key_is_refused() -> None:
    webhooks = WebhookReceiver(SECRET)
    body = b'{"phase":"reverse"}'
    with pytest.raises(InvalidWebhook, match="idempotency_key"):
        webhooks.verify(body, {"X-Rollback-Signature": sign(SECRET, body)})


def test_a_handler_that_fails_keeps_nothing_so_the_retry_runs_it_again() -> None:
    webhooks = WebhookReceiver(SECRET)
    body = b'{"idempotency_key":"step-1-reverse"}'
    calls: list[str] = []

    def flaky(delivery: Delivery) -> dict[str, Any]:
        calls.append(delivery.idempotency_key)
        if len(calls) == 1:
            raise RuntimeError("database down")
        return {"status": "ok"}

    with pytest.raises(RuntimeError):
        webhooks.handle(body, {"X-Rollback-Signature": sign(SECRET, body)}, flaky)
    assert webhooks.handle(body, {"X-Rollback-Signature": sign(SECRET, body)}, flaky) == {"status": "ok"}
    assert len(calls) == 2


def test_the_in_memory_store_forgets_the_oldest_keys_and_expired_answers() -> None:
    now = [0.0]
    store = InMemoryDeliveryStore(max_keys=2, ttl=10, clock=lambda: now[0])
    for key in ("a", "b", "c"):
        store.keep(key, {"status": "ok"})
    assert store.recall("a") is None and store.recall("c") == {"status": "ok"}
    now[0] = 11
    assert store.recall("c") is None


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        WebhookReceiver("")


def test_two_deliveries_of_one_key_at_once_run_the_handler_once() -> None:
    webhooks = WebhookReceiver(SECRET)
    body = b'{"idempotency_key":"step-9-reverse"}'
    headers = {"X-Rollback-Signature": sign(SECRET, body)}
    started, calls, answers = threading.Event(), [], []

    def slow(delivery: Delivery) -> dict[str, Any]:
        calls.append(delivery.idempotency_key)
        started.set()
        time.sleep(0.2)  # the retry arrives while the first try is still reversing
        return {"status": "ok", "call": len(calls)}

    first = threading.Thread(target=lambda: answers.append(webhooks.handle(body, headers, slow)))
    first.start()
    started.wait(5)
    answers.append(webhooks.handle(body, headers, slow))
    first.join(5)
    assert calls == ["step-9-reverse"]
    assert answers == [{"status": "ok", "call": 1}, {"status": "ok", "call": 1}]
    assert webhooks._key_locks == {}
