import pytest

from demo_shop.models import OutboundEmail


def notification(template: str = "refund_reversed", subject: str = "customer:1001"):
    return {
        "event": "rollback.notification",
        "template": template,
        "rollback_id": 3,
        "step_id": 7,
        "action": {"external_id": "run-1/refund", "action_type": "refund.issue", "subject": subject, "payload": {}},
    }


def test_a_notification_becomes_an_email_to_the_customer(console, books):
    response = console.post("/demo-shop/notifications", notification(), key="notify-12")
    assert response.status_code == 200
    email = OutboundEmail.objects.get(reference="notify-12")
    assert (email.to, email.source, email.template) == ("ada@example.com", "rollback_notification", "refund_reversed")
    assert "run-1/refund" in email.body
    assert (email.rollback_id, email.step_id) == (3, 7)


def test_a_notification_delivered_twice_is_one_email(console, books):
    console.post("/demo-shop/notifications", notification(), key="notify-12")
    again = console.post("/demo-shop/notifications", notification(), key="notify-12")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert OutboundEmail.objects.filter(reference="notify-12").count() == 1


def test_a_trigger_notice_with_an_unknown_template_still_reads_well(console, books):
    console.post("/demo-shop/notifications", notification("rollback_incident"), key="notify-13")
    email = OutboundEmail.objects.get(reference="notify-13")
    assert email.subject == "A correction to your account"


def test_a_notification_for_someone_who_is_not_a_customer_is_refused(console, books):
    response = console.post("/demo-shop/notifications", notification(subject="customer:9999"), key="notify-14")
    assert response.status_code == 422
    assert not OutboundEmail.objects.filter(reference="notify-14").exists()


def test_an_unsigned_notification_is_refused(console, books):
    response = console.post("/demo-shop/notifications", notification(), signature="t=1,v1=00")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body", [b"{", b'"text"', {"event": "something.else", "action": {}}, {"event": "rollback.notification"}]
)
def test_a_malformed_notification_is_a_400(console, books, body):
    assert console.post("/demo-shop/notifications", body).status_code == 400


def test_a_notification_without_idempotency_key_is_a_400(console, books):
    assert console.post("/demo-shop/notifications", notification(), key=None).status_code == 400


def test_odd_ids_in_a_notification_are_stored_as_unknown(console, books):
    body = {**notification(), "rollback_id": "three", "step_id": 10**30}
    assert console.post("/demo-shop/notifications", body, key="notify-15").status_code == 200
    email = OutboundEmail.objects.get(reference="notify-15")
    assert (email.rollback_id, email.step_id) == (None, None)


def test_a_captured_notification_replayed_under_a_new_header_key_is_refused_and_sends_nothing_twice(console, books):
    assert console.post("/demo-shop/notifications", notification(), key="notify-16").status_code == 200

    replay = console.post("/demo-shop/notifications", notification(), key="notify-16", header_key="notify-99")

    assert replay.status_code == 400
    assert "idempotency_key" in replay.json()["detail"]
    assert OutboundEmail.objects.filter(reference__in=["notify-16", "notify-99"]).count() == 1


def test_a_notification_is_deduplicated_on_the_signed_body_key_when_the_header_is_missing(console, books):
    console.post("/demo-shop/notifications", notification(), key="notify-17")
    body = {**notification(), "idempotency_key": "notify-17"}

    again = console.post("/demo-shop/notifications", body, key=None)

    assert again.status_code == 200
    assert again.json()["duplicate"] is True


def test_a_notification_nested_too_deeply_is_a_400_not_a_crash(console, books):
    deep = b"[" * 5000 + b"]" * 5000
    assert console.post("/demo-shop/notifications", deep).status_code == 400
