"""Filing a rollback from an action's page, and a bulk one from a selector: the plan first, then the request."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import Action, ActionState
from rollbacks.models import Rollback

from .conftest import csrf_token, record, snapshot


def post(client, url, data):
    token = csrf_token(client, url)
    return client.post(url, {**data, "csrfmiddlewaretoken": token})


@pytest.mark.django_db
def test_the_action_page_shows_the_chain_and_the_reversal_preview(cast, browser_for):
    refund = record(cast.shop)
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    html = browser_for(cast.carl).get(reverse("console:action", args=[refund.pk])).content.decode()
    assert refund.external_id in html and "alice" in html and "T-9" in html
    assert "closes in 29 d" in html
    assert "1 downstream action" in html and points.external_id in html
    assert "Never rolled back." in html
    assert 'data-testid="file-rollback"' in html


@pytest.mark.django_db
def test_previewing_shows_the_plan_and_writes_nothing(cast, browser_for):
    refund = record(cast.shop)
    record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    client = browser_for(cast.carl)
    before = snapshot()
    response = post(
        client,
        reverse("console:action", args=[refund.pk]),
        {"trigger": "customer_request", "reason": "customer says it was wrong", "intent": "preview"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="plan"' in html
    assert '<div class="stat">1</div><div class="stat-label">downstream in the cascade' in html
    assert snapshot() == before


@pytest.mark.django_db
def test_customer_service_files_a_request_from_the_action_page(cast, browser_for):
    refund = record(cast.shop)
    response = post(
        browser_for(cast.carl),
        reverse("console:action", args=[refund.pk]),
        {"trigger": "customer_request", "reason": "customer says it was wrong", "intent": "submit"},
    )
    rollback = Rollback.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("console:rollback", args=[rollback.pk])
    assert (rollback.trigger, rollback.requested_by, rollback.plan["action_ids"]) == (
        "customer_request",
        cast.carl,
        [refund.pk],
    )
    assert Action.objects.get(pk=refund.pk).state == ActionState.ROLLBACK_PENDING


@pytest.mark.django_db
def test_a_request_on_an_expired_window_demands_an_executive(cast, browser_for):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=40))
    client = browser_for(cast.carl)
    html = client.get(reverse("console:action", args=[refund.pk])).content.decode()
    assert "window expired" in html and "<strong>1 executive</strong>" in html
    post(
        client,
        reverse("console:action", args=[refund.pk]),
        {"trigger": "customer_request", "reason": "late complaint", "intent": "submit"},
    )
    rollback = Rollback.objects.get()
    assert {req["role"] for req in rollback.required_signoffs} == {"customer_service", "executive"}


@pytest.mark.django_db
def test_a_missing_reason_or_reference_comes_back_as_field_errors(cast, browser_for):
    refund = record(cast.shop)
    client = browser_for(cast.lena)
    url = reverse("console:action", args=[refund.pk])
    before = snapshot()
    response = post(client, url, {"trigger": "regulatory_order", "reason": "", "intent": "submit"})
    assert response.status_code == 400 and b"This field is required." in response.content
    response = post(client, url, {"trigger": "regulatory_order", "reason": "order 7", "intent": "submit"})
    assert response.status_code == 400
    assert b"form-errors" in response.content
    assert snapshot() == before


@pytest.mark.django_db
def test_a_depth_above_the_trigger_cap_is_refused(cast, browser_for):
    refund = record(cast.shop)
    response = post(
        browser_for(cast.bob),
        reverse("console:action", args=[refund.pk]),
        {"trigger": "reviewer_error", "reason": "x", "max_cascade_depth": "3", "intent": "submit"},
    )
    assert response.status_code == 400
    assert not Rollback.objects.exists()


@pytest.mark.django_db
def test_a_trigger_the_person_may_not_file_is_not_offered_and_refused(cast, browser_for):
    refund = record(cast.shop)
    client = browser_for(cast.carl)
    html = client.get(reverse("console:action", args=[refund.pk])).content.decode()
    assert 'value="incident"' not in html
    response = post(client, reverse("console:action", args=[refund.pk]), {"trigger": "incident", "reason": "x"})
    assert response.status_code == 400
    assert not Rollback.objects.exists()


@pytest.mark.django_db
def test_a_verifier_has_no_filing_form_and_a_forged_post_files_nothing(cast, browser_for):
    refund = record(cast.shop)
    client = browser_for(cast.vera)
    assert b'data-testid="file-rollback"' not in client.get(reverse("console:action", args=[refund.pk])).content
    response = post(client, reverse("console:action", args=[refund.pk]), {"trigger": "reviewer_error", "reason": "x"})
    assert response.status_code == 302
    assert not Rollback.objects.exists()


@pytest.mark.django_db
def test_filing_without_the_csrf_token_is_refused(cast, browser_for):
    refund = record(cast.shop)
    response = browser_for(cast.carl).post(
        reverse("console:action", args=[refund.pk]),
        {"trigger": "customer_request", "reason": "x", "intent": "submit"},
    )
    assert response.status_code == 403
    assert not Rollback.objects.exists()


@pytest.mark.django_db
def test_search_finds_an_action_by_external_id_or_subject(cast, browser_for):
    mine = record(cast.shop, subject="customer:4242")
    other = record(cast.shop, subject="customer:7")
    client = browser_for(cast.carl)
    html = client.get(reverse("console:actions"), {"q": "customer:4242"}).content.decode()
    assert mine.external_id in html and other.external_id not in html
    html = client.get(reverse("console:actions"), {"q": other.external_id}).content.decode()
    assert other.external_id in html and mine.external_id not in html
    assert client.get(reverse("console:actions"), {"state": "bogus", "page": "x"}).status_code == 200


@pytest.mark.django_db
def test_the_bulk_page_shows_the_plan_then_files_the_selector(cast, browser_for):
    for _ in range(3):
        record(cast.shop, "record.update")
    record(cast.shop, "wire.transfer", amount="900.00")
    client = browser_for(cast.ines)
    url = reverse("console:bulk")
    before = snapshot()
    response = post(
        client, url, {"trigger": "incident", "reason": "agent bug", "action_type": "record.update", "intent": "preview"}
    )
    assert response.status_code == 200 and b'data-testid="plan"' in response.content
    assert b'<div class="stat">3</div><div class="stat-label">actions selected' in response.content
    assert snapshot() == before
    response = post(
        client, url, {"trigger": "incident", "reason": "agent bug", "action_type": "record.update", "intent": "submit"}
    )
    rollback = Rollback.objects.get()
    assert response.status_code == 302
    assert rollback.selector == {"action_type": "record.update"} and rollback.plan["actions"] == 3


@pytest.mark.django_db
def test_the_bulk_page_counts_irreversible_actions_and_refuses_an_empty_selector(cast, browser_for):
    record(cast.shop, "wire.transfer", amount="900.00")
    client = browser_for(cast.ines)
    url = reverse("console:bulk")
    response = post(
        client, url, {"trigger": "incident", "reason": "x", "action_type": "wire.transfer", "intent": "preview"}
    )
    assert b'<div class="stat">1</div><div class="stat-label">irreversible' in response.content
    response = post(client, url, {"trigger": "incident", "reason": "x", "intent": "submit"})
    assert response.status_code == 400 and b"Choose at least one filter" in response.content
    response = post(client, url, {"trigger": "incident", "reason": "x", "executed_after": "yesterday"})
    assert response.status_code == 400
    assert not Rollback.objects.exists()


@pytest.mark.django_db
def test_the_bulk_page_takes_a_time_range_from_the_browser_s_date_fields(cast, browser_for):
    old = record(cast.shop, "record.update", executed_at=timezone.now() - timedelta(days=3))
    record(cast.shop, "record.update")
    since = (timezone.now() - timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    until = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = post(
        browser_for(cast.ines),
        reverse("console:bulk"),
        {"trigger": "incident", "reason": "x", "executed_after": since, "executed_before": until, "intent": "submit"},
    )
    assert response.status_code == 302
    assert Rollback.objects.get().plan["action_ids"] == [old.pk]
