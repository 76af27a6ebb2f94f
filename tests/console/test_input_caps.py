"""The console's inputs are capped as the API's: an 8 MiB sign-off comment, note or reason is refused with a
clear error naming the field, and nothing reaches the trail."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from console.forms import MAX_SEARCH_LENGTH, MAX_TEXT_LENGTH
from rollbacks.models import SignOff

from .conftest import csrf_token, record, snapshot

HUGE = "x" * (8 * 1024 * 1024)

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(message) for message in response.context["messages"]]


def test_an_8_mib_sign_off_comment_is_refused_with_a_clear_error_and_nothing_written(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    url = reverse("console:rollback", args=[reviewer_error.pk])
    token = csrf_token(client, url)
    before = snapshot()

    response = client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "approve", "comment": HUGE, "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert snapshot() == before
    assert any(
        m.startswith("Comment: Ensure this value has at most 10000 characters") for m in messages_of(response)
    ), messages_of(response)


def test_a_comment_at_the_cap_is_taken(cast, browser_for, reviewer_error, no_workers):
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    comment = "y" * MAX_TEXT_LENGTH

    client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "approve", "comment": comment, "csrfmiddlewaretoken": token},
    )

    assert SignOff.objects.get(rollback=reviewer_error).comment == comment


def test_a_sign_off_without_a_decision_is_refused_by_name(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    before = snapshot()

    response = client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "maybe", "csrfmiddlewaretoken": token},
        follow=True,
    )

    assert snapshot() == before
    assert any(m.startswith("Decision: Select a valid choice.") for m in messages_of(response))


def test_an_8_mib_remediation_note_is_refused(cast, browser_for, ivan, task):
    client = browser_for(ivan)
    token = csrf_token(client, reverse("console:remediation"))
    before = AuditEvent.objects.count()

    response = client.post(
        reverse("console:remediation-done", args=[task.pk]), {"note": HUGE, "csrfmiddlewaretoken": token}, follow=True
    )

    task.refresh_from_db()
    assert task.done_at is None and AuditEvent.objects.count() == before
    assert any(m.startswith("Note: Ensure this value has at most 10000 characters") for m in messages_of(response))


def test_an_8_mib_reason_is_refused_on_the_filing_form(cast, browser_for):
    action = record(cast.shop)
    client = browser_for(cast.carl)
    url = reverse("console:action", args=[action.pk])
    token = csrf_token(client, url)
    before = snapshot()

    response = client.post(
        url,
        {"trigger": "customer_request", "reason": HUGE, "intent": "submit", "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 400 and snapshot() == before
    assert "Ensure this value has at most 10000 characters" in response.content.decode()


def test_a_search_longer_than_any_external_id_is_a_clear_400(cast, browser_for):
    response = browser_for(cast.carl).get(reverse("console:actions"), {"q": "r" * (MAX_SEARCH_LENGTH + 1)})

    assert response.status_code == 400
    assert "Q: Ensure this value has at most 255 characters" in response.content.decode()
