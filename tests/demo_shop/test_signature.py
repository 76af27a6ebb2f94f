import json
import time

from policies.methods.webhook import post_signed, sign, verify_signature
from tests.demo_shop.conftest import reversal_body


def test_a_signature_made_by_sign_is_verified():
    assert verify_signature("s3cret", sign("s3cret", b'{"a":1}'), b'{"a":1}')


def test_a_signature_over_another_body_is_refused():
    assert not verify_signature("s3cret", sign("s3cret", b'{"a":1}'), b'{"a":2}')


def test_a_signature_made_with_another_secret_is_refused():
    assert not verify_signature("s3cret", sign("other", b"{}"), b"{}")


def test_a_timestamp_more_than_300_seconds_old_or_ahead_is_refused():
    now = 1_800_000_000
    assert verify_signature("s", sign("s", b"{}", now - 300), b"{}", now=now)
    assert not verify_signature("s", sign("s", b"{}", now - 301), b"{}", now=now)
    assert not verify_signature("s", sign("s", b"{}", now + 301), b"{}", now=now)


def test_a_malformed_header_is_refused_without_error():
    for header in ["", "garbage", "t=abc,v1=00", "v1=00", "t=1800000000"]:
        assert not verify_signature("s", header, b"{}", now=1_800_000_000)


def test_one_matching_v1_among_several_is_enough_while_a_secret_rotates():
    header = sign("new", b"{}", 1_800_000_000)
    old_mac = sign("old", b"{}", 1_800_000_000).rpartition("v1=")[2]
    assert verify_signature("new", f"{header},v1={old_mac}", b"{}", now=1_800_000_000)


def test_the_shop_accepts_a_correctly_signed_call(console, books):
    response = console.reverse_phase("check", "refund.chargeback", "run-1/refund")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_shop_refuses_a_call_signed_with_the_wrong_secret(console, books):
    response = console.post(
        "/demo-shop/reversals", reversal_body("check", "refund.chargeback", "run-1/refund"), secret="wrong"
    )
    assert response.status_code == 401


def test_the_shop_refuses_an_unsigned_call(console, books):
    response = console.post(
        "/demo-shop/reversals", reversal_body("check", "refund.chargeback", "run-1/refund"), signature=""
    )
    assert response.status_code == 401


def test_the_shop_refuses_a_stale_signature(console, books):
    stale = int(time.time()) - 301
    response = console.post(
        "/demo-shop/reversals", reversal_body("reverse", "refund.chargeback", "run-1/refund"), timestamp=stale
    )
    assert response.status_code == 401
    books.refund.refresh_from_db()
    assert books.refund.status == "issued"


def test_the_shop_refuses_a_signature_from_the_future(console, books):
    ahead = int(time.time()) + 301
    response = console.post("/demo-shop/notifications", {"event": "rollback.notification"}, timestamp=ahead)
    assert response.status_code == 401


def test_the_shop_answers_503_when_it_has_no_secret_configured(console, books, monkeypatch):
    monkeypatch.delenv("SHOP_WEBHOOK_SECRET")
    response = console.reverse_phase("check", "refund.chargeback", "run-1/refund")
    assert response.status_code == 503


def test_the_receivers_take_only_post(client):
    assert client.get("/demo-shop/reversals").status_code == 405
    assert client.get("/demo-shop/notifications").status_code == 405


def test_a_signed_call_carries_its_idempotency_key_inside_the_signed_body(monkeypatch):
    sent = []

    class Answer:
        status = 200

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b'{"status": "ok"}'

    monkeypatch.setattr("urllib.request.urlopen", lambda request, timeout: sent.append(request) or Answer())

    post_signed("http://shop.test/reversals", {"phase": "check"}, "s3cret", idempotency_key="step-7-check")

    request = sent[0]
    assert json.loads(request.data) == {"phase": "check", "idempotency_key": "step-7-check"}
    assert request.get_header("Idempotency-key") == "step-7-check"
    assert verify_signature("s3cret", request.get_header("X-rollback-signature"), request.data)
