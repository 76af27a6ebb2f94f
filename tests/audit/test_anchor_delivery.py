"""The second place for anchors: each anchor line is posted, signed, to AUDIT_ANCHOR_URL; a receiver outage
delays it and never blocks the trail or the anchor file."""

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from django.conf import settings
from django.core.management import call_command

from audit.models import AnchorDelivery
from audit.services import anchor_audit_head, anchor_signature, deliver_anchors
from audit.tasks import anchor_audit_head as anchor_task
from audit.tasks import deliver_audit_anchors
from policies.methods.webhook import sign, verify_signature
from tests.audit.conftest import record

SECRET = "anchor-receiver-secret"


class Receiver:
    """A small anchor receiver: answers 503 while `down`, otherwise keeps each signed line it is given."""

    def __init__(self) -> None:
        self.down = False
        self.calls = 0
        self.received: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                status = 503 if receiver.down else 200
                if status == 200:
                    receiver.received.append((body, dict(self.headers)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/anchors"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    receiver = Receiver()
    settings.AUDIT_ANCHOR_URL = receiver.url
    settings.AUDIT_ANCHOR_SECRET = SECRET
    settings.WEBHOOK_TIMEOUT_SECONDS = 5
    yield receiver
    receiver.close()


def file_lines() -> list[bytes]:
    with open(settings.AUDIT_ANCHOR_PATH, "rb") as anchors:
        return anchors.read().splitlines()


def test_the_receiver_gets_each_anchor_once_signed_and_in_order_after_an_outage(cast, receiver):
    receiver.down = True
    record(2)
    anchor_task.apply()
    record(3)
    anchor_task.apply()
    deliver_audit_anchors.apply()
    assert receiver.received == []
    assert receiver.calls == 3, "each round stops at the first refusal, so anchors never overtake each other"
    assert len(file_lines()) == 2, "the outage did not keep the anchors from the file"
    assert list(AnchorDelivery.objects.values_list("attempts", "delivered_at")) == [(3, None), (0, None)]

    receiver.down = False
    deliver_audit_anchors.apply()
    deliver_audit_anchors.apply()
    anchor_task.apply()

    bodies = [body for body, _ in receiver.received]
    assert bodies == file_lines(), "every anchor line once, in the order written, byte for byte"
    for body, headers in receiver.received:
        assert verify_signature(SECRET, headers["X-Rollback-Signature"], body)
        anchor = orjson.loads(body)
        assert headers["Idempotency-Key"] == f"anchor-{anchor['seq']}-{anchor['hash']}"
    assert not AnchorDelivery.objects.filter(delivered_at=None).exists()


def test_the_anchor_command_posts_the_anchor_at_once(cast, receiver):
    record(1)
    call_command("anchor_audit", stdout=io.StringIO())
    [(body, _)] = receiver.received
    assert [body] == file_lines()


def test_a_refused_connection_leaves_the_anchor_pending_and_the_trail_writable(cast, receiver, settings):
    receiver.close()
    record(1)
    anchor_audit_head()
    assert deliver_anchors() == 0
    [delivery] = AnchorDelivery.objects.all()
    assert delivery.attempts == 1 and delivery.delivered_at is None
    assert delivery.last_error.startswith("no answer")
    record(1)  # the trail goes on


def test_anchors_are_not_posted_unsigned_when_no_secret_is_set(cast, receiver, settings):
    settings.AUDIT_ANCHOR_SECRET = ""
    record(1)
    anchor_audit_head()
    assert deliver_anchors() == 0
    assert receiver.calls == 0
    assert "AUDIT_ANCHOR_SECRET" in AnchorDelivery.objects.get().last_error


def test_without_an_anchor_url_nothing_is_queued(cast, settings):
    settings.AUDIT_ANCHOR_URL = ""
    record(1)
    call_command("anchor_audit", stdout=io.StringIO())
    assert not AnchorDelivery.objects.exists()
    assert deliver_anchors() == 0


def test_the_anchor_signature_is_the_webhooks_signature():
    body = b'{"seq":3,"hash":"ab","at":"t"}'
    assert anchor_signature(SECRET, body, timestamp=1_700_000_000) == sign(SECRET, body, timestamp=1_700_000_000)


def test_delivery_runs_every_minute_by_beat():
    assert settings.CELERY_BEAT_SCHEDULE["deliver-audit-anchors"] == {
        "task": "audit.tasks.deliver_audit_anchors",
        "schedule": 60.0,
    }
