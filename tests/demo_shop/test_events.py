"""The shop's events_url receiver and the page that lists what it received."""

import pytest

from demo_shop.models import ReceivedEvent

pytestmark = pytest.mark.django_db


def rejected(rollback_id: int = 3) -> dict:
    return {
        "event": "rollback.rejected",
        "rollback": {
            "id": rollback_id,
            "trigger": "customer_request",
            "state": "rejected",
            "reason": "the customer asked",
            "signoffs": [{"signer": "carl", "role": "customer_service", "decision": "reject", "comment": "not so"}],
        },
        "comment": "not so",
        "actions": ["run-1/refund"],
    }


def test_a_signed_event_is_kept_once_per_key(console):
    first = console.post("/demo-shop/events", rejected(), key="event-3-rollback.rejected")
    again = console.post("/demo-shop/events", rejected(), key="event-3-rollback.rejected")

    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    event = ReceivedEvent.objects.get()
    assert (event.event, event.rollback_id, event.state, event.calls) == ("rollback.rejected", 3, "rejected", 2)


def test_an_unsigned_or_wrongly_signed_event_is_refused(console):
    assert console.post("/demo-shop/events", rejected(), signature="t=1,v1=00").status_code == 401
    assert console.post("/demo-shop/events", rejected(), secret="not-the-shops").status_code == 401
    assert not ReceivedEvent.objects.exists()


@pytest.mark.parametrize("body", [b"{", {"event": "something.else", "rollback": {}}, {"event": "rollback.completed"}])
def test_a_malformed_event_is_a_400(console, body):
    assert console.post("/demo-shop/events", body).status_code == 400


def test_the_shops_page_lists_the_received_events_with_the_rejecting_comment(client, cast, console):
    console.post("/demo-shop/events", rejected(), key="event-3-rollback.rejected")
    client.force_login(cast.shop)

    response = client.get("/demo-shop/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "rollback.rejected" in page and "not so" in page and "run-1/refund" in page


@pytest.mark.parametrize("username", ["nobody", "alice", "carl"])
def test_someone_who_is_not_the_shop_may_not_see_its_events(client, cast, console, username):
    console.post("/demo-shop/events", rejected(), key="event-3-rollback.rejected")
    client.force_login(getattr(cast, username))

    response = client.get("/demo-shop/")

    assert response.status_code == 403
    assert "not so" not in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/demo-shop/")

    assert response.status_code == 302 and "/login" in response["Location"]
