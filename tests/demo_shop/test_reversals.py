from decimal import Decimal

import pytest

from demo_shop import services
from demo_shop.models import Customer, ReversalLedgerEntry
from tests.demo_shop.conftest import reversal_body


def test_a_chargeback_takes_the_refund_back_from_the_balance(console, books):
    for phase in ("check", "reverse", "verify"):
        assert console.reverse_phase(phase, "refund.chargeback", "run-1/refund").json() == {"status": "ok"}
    books.refund.refresh_from_db()
    books.ada.refresh_from_db()
    assert books.refund.status == "charged_back"
    assert books.ada.balance == Decimal("0.00")


def test_a_reverse_retried_with_the_same_key_charges_back_once(console, books):
    first = console.reverse_phase("reverse", "refund.chargeback", "run-1/refund")
    second = console.reverse_phase("reverse", "refund.chargeback", "run-1/refund")
    assert first.json() == second.json() == {"status": "ok"}
    books.ada.refresh_from_db()
    assert books.ada.balance == Decimal("0.00")
    entry = ReversalLedgerEntry.objects.get(idempotency_key="step-7-reverse")
    assert (entry.calls, entry.applied) == (2, True)


def test_a_second_rollback_of_a_charged_back_refund_changes_nothing(console, books):
    console.reverse_phase("reverse", "refund.chargeback", "run-1/refund", step_id=7)
    again = console.reverse_phase("reverse", "refund.chargeback", "run-1/refund", step_id=8)
    assert again.json() == {"status": "ok"}
    books.ada.refresh_from_db()
    assert books.ada.balance == Decimal("0.00")


def test_a_key_reused_with_another_body_is_refused_and_changes_nothing(console, books):
    console.reverse_phase("check", "refund.chargeback", "run-1/refund")
    response = console.post(
        "/demo-shop/reversals", reversal_body("check", "points.revoke", "run-1/points"), key="step-7-check"
    )
    assert response.status_code == 409


def test_a_closed_account_leaves_the_chargeback_unmet(console, books):
    response = console.reverse_phase("check", "refund.chargeback", "run-2/refund", subject="customer:1003")
    assert response.json() == {"status": "unmet", "unmet": ["account_open"]}


def test_a_reverse_on_a_closed_account_fails_and_a_retry_after_reopening_succeeds(console, books):
    failed = console.reverse_phase("reverse", "refund.chargeback", "run-2/refund", subject="customer:1003")
    assert failed.json()["status"] == "failed"
    assert "account_open" in failed.json()["detail"]
    Customer.objects.filter(pk=books.colm.pk).update(status="open")
    retried = console.reverse_phase("reverse", "refund.chargeback", "run-2/refund", subject="customer:1003")
    assert retried.json() == {"status": "ok"}
    books.colm.refresh_from_db()
    assert books.colm.balance == Decimal("0.00")


def test_points_already_spent_leave_the_revocation_unmet(console, books):
    response = console.reverse_phase("check", "points.revoke", "run-3/points", subject="customer:1004")
    assert response.json() == {"status": "unmet", "unmet": ["points_unspent"]}


def test_unspent_points_are_revoked_once(console, books):
    for _ in range(2):
        assert console.reverse_phase("reverse", "points.revoke", "run-1/points").json() == {"status": "ok"}
    books.ada.refresh_from_db()
    assert books.ada.points == 100


def test_a_tier_downgrade_returns_the_customer_to_the_previous_tier(console, books):
    console.reverse_phase("reverse", "tier.downgrade", "run-1/tier")
    books.ada.refresh_from_db()
    assert books.ada.tier == "bronze"
    assert console.reverse_phase("verify", "tier.downgrade", "run-1/tier").json() == {"status": "ok"}


def test_verify_fails_while_the_effect_is_not_undone(console, books):
    response = console.reverse_phase("verify", "tier.downgrade", "run-1/tier")
    assert response.json()["status"] == "failed"


def test_an_unread_email_is_recalled_and_a_read_one_stays_read(console, books):
    console.reverse_phase("reverse", "email.recall", "run-1/email")
    books.email.refresh_from_db()
    assert books.email.status == "recalled"
    read = services.send_email(books.ada, "run-1/email-read", "Welcome", "Hello", read=True)
    assert console.reverse_phase("reverse", "email.recall", "run-1/email-read", step_id=9).json() == {"status": "ok"}
    read.refresh_from_db()
    assert read.status == "recall_failed_read"


@pytest.mark.parametrize(
    ("operation", "external_id", "subject", "detail"),
    [
        ("refund.teleport", "run-1/refund", "customer:1001", "does not know the operation"),
        ("refund.chargeback", "run-9/none", "customer:1001", "no refund run-9/none"),
        ("refund.chargeback", "run-1/refund", "customer:9999", "no customer"),
        ("refund.chargeback", "run-1/refund", "order:5", "no customer"),
        ("refund.chargeback", "run-1/refund", "customer:1003", "no refund"),
    ],
)
def test_a_call_the_shop_cannot_match_fails_with_a_reason(console, books, operation, external_id, subject, detail):
    response = console.reverse_phase("check", operation, external_id, subject=subject)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert detail in response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        {"phase": "check"},
        {"phase": "check", "operation": "refund.chargeback", "action": "run-1/refund"},
        {"phase": "check", "operation": "refund.chargeback", "action": {"external_id": 5, "subject": "customer:1"}},
        {"phase": 3, "operation": "refund.chargeback", "action": {"external_id": "x", "subject": "customer:1"}},
    ],
)
def test_a_malformed_body_is_a_400(console, books, body):
    assert console.post("/demo-shop/reversals", body).status_code == 400


def test_a_call_without_idempotency_key_is_a_400(console, books):
    response = console.post(
        "/demo-shop/reversals", reversal_body("check", "refund.chargeback", "run-1/refund"), key=None
    )
    assert response.status_code == 400


def test_an_unknown_phase_fails(console, books):
    response = console.post("/demo-shop/reversals", reversal_body("undo", "refund.chargeback", "run-1/refund"))
    assert response.json()["status"] == "failed"


def test_a_call_whose_payload_disagrees_with_the_shops_row_is_refused_and_changes_nothing(console, books):
    body = reversal_body("reverse", "refund.chargeback", "run-1/refund")
    body["action"]["payload"] = {"amount": "2500.00", "currency": "EUR"}
    response = console.post("/demo-shop/reversals", body, key="step-7-reverse")
    assert response.json()["status"] == "failed"
    assert "the refund was 25.00 EUR" in response.json()["detail"]
    books.ada.refresh_from_db()
    assert books.ada.balance == Decimal("25.00")


def test_a_call_whose_payload_agrees_with_the_shops_row_is_answered(console, books):
    body = reversal_body("check", "points.revoke", "run-1/points")
    body["action"]["payload"] = {"points": 250}
    assert console.post("/demo-shop/reversals", body, key="step-7-check").json() == {"status": "ok"}
    body["action"]["payload"] = {"points": 9999}
    assert console.post("/demo-shop/reversals", body, key="step-8-check").json()["status"] == "failed"
