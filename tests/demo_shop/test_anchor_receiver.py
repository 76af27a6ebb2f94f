"""The demo's anchor receiver: the product posts each anchor line there, signed; it keeps each line once."""

import orjson
import pytest
from django.db import connection
from django.test import Client

from audit.services import anchor_audit_head, anchor_signature
from demo_shop.services import anchor_receiver_path

SECRET = "demo-anchor-secret"


@pytest.fixture
def receiving(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("AUDIT_ANCHOR_SECRET", SECRET)
    return Client()


def post(client: Client, body: bytes, secret: str = SECRET):
    return client.post(
        "/demo-shop/anchors",
        body,
        content_type="application/json",
        headers={"X-Rollback-Signature": anchor_signature(secret, body)},
    )


LINE = orjson.dumps({"seq": 7, "hash": "a" * 64, "at": "2026-12-06T02:00:00+00:00"})


def test_the_receiver_keeps_a_signed_anchor_line_once(receiving):
    assert post(receiving, LINE).json() == {"status": "ok", "duplicate": False}
    assert post(receiving, LINE).json() == {"status": "ok", "duplicate": True}
    assert anchor_receiver_path().read_bytes() == LINE + b"\n"


def test_the_receiver_refuses_a_line_signed_with_another_secret(receiving):
    assert post(receiving, LINE, secret="wrong").status_code == 401
    assert not anchor_receiver_path().exists()


@pytest.mark.parametrize("body", [b"not json", b"[1]", b'{"seq": "7", "hash": "x"}'])
def test_the_receiver_refuses_what_is_not_an_anchor_line(receiving, body):
    assert post(receiving, body).status_code == 400


def test_without_a_secret_the_receiver_takes_nothing(receiving, monkeypatch):
    monkeypatch.delenv("AUDIT_ANCHOR_SECRET")
    assert post(receiving, LINE).status_code == 503


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a live server flushes the trail: PostgreSQL only")
def test_the_product_posts_its_anchors_to_the_demo_receiver(cast, receiving, settings, live_server):
    from audit.services import deliver_anchors

    settings.AUDIT_ANCHOR_URL = f"{live_server.url}/demo-shop/anchors"
    settings.AUDIT_ANCHOR_SECRET = SECRET
    settings.AUDIT_ANCHOR_PATH = str(settings.VAR_DIR / "anchors.jsonl")
    anchor_audit_head()
    assert deliver_anchors() == 1
    assert anchor_receiver_path().read_bytes() == (settings.VAR_DIR / "anchors.jsonl").read_bytes()
