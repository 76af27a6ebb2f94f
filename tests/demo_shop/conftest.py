"""The shop's books for webhook tests, and a client that signs as the Rollback Console does."""

import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from demo_shop import services
from demo_shop.models import Customer
from policies.methods.webhook import sign

SHOP_SECRET = "shop-secret-for-tests"


@pytest.fixture(autouse=True)
def _shop_secret(monkeypatch):
    monkeypatch.setenv("SHOP_WEBHOOK_SECRET", SHOP_SECRET)


@pytest.fixture
def books(db):
    """Ada (open account) with a refund -> points -> tier -> benefits chain, a membership, a record and an email;
    Colm (closed account) with a refund; Dana, who spent most of the points she was granted."""
    ada = services.open_customer(1001, name="Ada", email="ada@example.com", points=100)
    colm = services.open_customer(1003, name="Colm", email="colm@example.com", status=Customer.Status.CLOSED)
    dana = services.open_customer(1004, name="Dana", email="dana@example.com")
    return SimpleNamespace(
        ada=ada,
        colm=colm,
        dana=dana,
        refund=services.issue_refund(ada, "run-1/refund", Decimal("25.00")),
        grant=services.grant_points(ada, "run-1/points", 250),
        tier=services.change_tier(ada, "run-1/tier", "gold"),
        benefits=services.grant_benefits(ada, "run-1/benefits", ["free_shipping", "lounge"], used=("lounge",)),
        membership=services.reinstate_membership(ada, "run-1/membership"),
        record=services.update_record(ada, "run-1/address", "shipping_address", {"city": "Lyon"}),
        email=services.send_email(ada, "run-1/email", "Your refund", "We refunded you."),
        colm_refund=services.issue_refund(colm, "run-2/refund", Decimal("40.00")),
        dana_grant=services.grant_points(dana, "run-3/points", 500, redeemed=400),
    )


def reversal_body(phase: str, operation: str, external_id: str, subject: str = "customer:1001", step_id: int = 7):
    return {
        "phase": phase,
        "step_id": step_id,
        "rollback_id": 3,
        "trigger": "customer_request",
        "operation": operation,
        "action": {"external_id": external_id, "action_type": "refund.issue", "subject": subject, "payload": {}},
    }


class SignedClient:
    def __init__(self, client):
        self.client = client

    def post(
        self,
        path: str,
        body: Any,
        *,
        key: str | None = "k-1",
        secret: str = SHOP_SECRET,
        timestamp=None,
        signature: str | None = None,
        header_key: str | None = None,
    ):
        if isinstance(body, dict) and key is not None:
            body = {**body, "idempotency_key": key}  # as the workers send it: the key signed in the body
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"X-Rollback-Signature": signature if signature is not None else sign(secret, raw, timestamp)}
        if key is not None:
            headers["Idempotency-Key"] = header_key or key
        return self.client.post(path, data=raw, content_type="application/json", headers=headers)

    def reverse_phase(self, phase: str, operation: str, external_id: str, *, subject="customer:1001", step_id=7):
        return self.post(
            "/demo-shop/reversals",
            reversal_body(phase, operation, external_id, subject, step_id),
            key=f"step-{step_id}-{phase}",
        )


@pytest.fixture
def console(client):
    """Posts to the shop as the Rollback Console's workers do: signed, with an Idempotency-Key."""
    return SignedClient(client)
