"""The Rollbacks page: every rollback the person may see, searched by id, reason, reference or requester,
filtered by state and trigger, 25 a page; and the header's live counts of the inbox."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rollbacks.services import request_rollback

from .conftest import record

pytestmark = pytest.mark.django_db
URL = reverse("console:rollbacks")


def listed(client, **params) -> set[int]:
    html = client.get(URL, params).content.decode()
    return {int(found) for found in re.findall(r'<tr data-rollback="(\d+)"', html)}


@pytest.fixture
def two(cast, reviewer_error):
    action = record(cast.shop)
    customer = request_rollback(
        requester=cast.carl,
        trigger="customer_request",
        reason="the customer changed their mind",
        actions=[action.pk],
        reference="CS-77",
    )
    return reviewer_error, customer


def test_an_auditor_sees_every_rollback_and_a_signer_only_theirs(cast, browser_for, two):
    reviewer_error, customer = two
    assert listed(browser_for(cast.audrey)) == {reviewer_error.pk, customer.pk}
    assert listed(browser_for(cast.vera)) == {reviewer_error.pk}
    assert listed(browser_for(cast.carl)) == {customer.pk}
    assert listed(browser_for(cast.bob)) == {reviewer_error.pk}  # his own request
    assert listed(browser_for(cast.eddie)) == set()


def test_search_finds_by_id_reason_reference_and_requester(cast, browser_for, two):
    reviewer_error, customer = two
    client = browser_for(cast.audrey)
    assert listed(client, q=f"#{customer.pk}") == {customer.pk}
    assert listed(client, q=str(reviewer_error.pk)) >= {reviewer_error.pk}
    assert listed(client, q="changed their MIND") == {customer.pk}
    assert listed(client, q="cs-77") == {customer.pk}
    assert listed(client, q="bob") == {reviewer_error.pk}
    assert listed(client, q="nothing like this") == set()


def test_filters_by_state_and_trigger_and_ignores_a_value_it_does_not_know(cast, browser_for, two):
    reviewer_error, customer = two
    client = browser_for(cast.audrey)
    assert listed(client, trigger="customer_request") == {customer.pk}
    assert listed(client, state="completed") == set()
    assert listed(client, state="pending_authorization", trigger="reviewer_error") == {reviewer_error.pk}
    response = client.get(URL, {"state": "done", "trigger": "reviewer_error"})
    assert response.status_code == 200 and "Ignored an unknown state" in response.content.decode()
    assert listed(client, state="done", trigger="reviewer_error") == {reviewer_error.pk}


def test_someone_without_a_role_is_refused(cast, browser_for, two):
    assert browser_for(cast.nobody).get(URL).status_code == 403
    assert browser_for(cast.shop).get(URL).status_code == 403


def test_the_list_is_paginated_with_the_same_queries_for_any_number(cast, browser_for):
    client = browser_for(cast.audrey)
    client.get(URL)

    def file(n: int) -> None:
        for _ in range(n):
            action = record(cast.shop)
            request_rollback(requester=cast.carl, trigger="customer_request", reason="asked", actions=[action.pk])

    file(3)
    with CaptureQueriesContext(connection) as few:
        client.get(URL)
    file(25)
    with CaptureQueriesContext(connection) as many:
        html = client.get(URL).content.decode()
    assert len(many) == len(few)
    assert html.count("<tr data-rollback=") == 25 and "Page 1 of 2" in html


def test_the_header_counts_the_inbox_per_kind_and_htmx_refreshes_them(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    page = client.get(reverse("console:actions")).content.decode()
    assert 'hx-get="/console/inbox/counts/" hx-trigger="every 30s"' in page
    assert 'data-kind="signoff" title="1 Sign-off item waiting for you">Sign-off <b>1</b>' in page
    fragment = client.get(reverse("console:inbox-counts")).content.decode()
    assert fragment.startswith('<span id="inbox-counts"') and "Sign-off <b>1</b>" in fragment
    action = record(cast.shop)
    request_rollback(requester=cast.bob, trigger="reviewer_error", reason="again", actions=[action.pk])
    assert "Sign-off <b>2</b>" in client.get(reverse("console:inbox-counts")).content.decode()
    # someone with nothing to sign gets no counts, and no queue link
    assert "inbox-counts" not in browser_for(cast.audrey).get(reverse("console:actions")).content.decode()
