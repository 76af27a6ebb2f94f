"""The queue: the inbox as a page; each signer sees what waits for them, never their own requests."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from rollbacks.services import request_rollback

from .conftest import record, snapshot


def file_reviewer_errors(cast, count: int, *, requester=None, executed_at=None) -> list[int]:
    ids = []
    for _ in range(count):
        action = record(cast.shop, executed_at=executed_at)
        rollback = request_rollback(
            requester=requester or cast.bob, trigger="reviewer_error", reason="approved by mistake", actions=[action.pk]
        )
        ids.append(rollback.pk)
    return ids


def row_tag(html: str, rollback_id: int) -> str:
    match = re.search(rf'<tr[^>]*data-rollback="{rollback_id}"[^>]*>', html)
    assert match, f"no row for rollback {rollback_id}"
    return match.group(0)


@pytest.mark.django_db
def test_a_verifier_sees_a_reviewer_error_waiting_for_them(cast, browser_for, reviewer_error):
    response = browser_for(cast.vera).get(reverse("console:queue"))
    assert response.status_code == 200
    assert f'data-rollback="{reviewer_error.pk}"' in response.content.decode()


@pytest.mark.django_db
def test_the_requester_does_not_see_their_own_request_in_the_queue(cast, browser_for, reviewer_error):
    # bob signs nothing, so his queue can hold nothing: he lands on the rollbacks he may see, his own among them
    response = browser_for(cast.bob).get(reverse("console:queue"))
    assert response.status_code == 302 and response["Location"] == reverse("console:rollbacks")
    cast.bob.groups.add(cast.carl.groups.get())  # now he signs customer requests, so he has a queue
    html = browser_for(cast.bob).get(reverse("console:queue")).content.decode()
    assert f'data-rollback="{reviewer_error.pk}"' not in html
    assert "Your recent requests" in html  # but it is listed among what they filed


@pytest.mark.django_db
def test_an_auditor_lands_on_the_rollbacks_page_not_on_an_empty_queue(cast, browser_for, reviewer_error):
    client = browser_for(cast.audrey)
    response = client.get(reverse("console:queue"))
    assert response.status_code == 302 and response["Location"] == reverse("console:rollbacks")
    html = client.get(reverse("console:rollbacks")).content.decode()
    assert f'data-rollback="{reviewer_error.pk}"' in html
    assert 'href="/console/">Queue<' not in html  # no queue in the navigation either


@pytest.mark.django_db
def test_customer_service_does_not_see_a_reviewer_error(cast, browser_for, reviewer_error):
    html = browser_for(cast.carl).get(reverse("console:queue")).content.decode()
    assert f'data-rollback="{reviewer_error.pk}"' not in html
    assert 'data-testid="queue-empty"' in html


@pytest.mark.django_db
def test_a_row_says_what_is_reversed_and_links_to_its_page(cast, browser_for, reviewer_error):
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    href = reverse("console:rollback", args=[reviewer_error.pk])
    assert f'<tr data-inbox-row data-href="{href}"' in html
    assert "Sign off reversing refund.issue on customer:1001 (25.00 EUR)" in html
    badge = '<span class="badge warn" data-value="pending_authorization">pending authorization</span>'
    assert f'<td class="state">{badge}</td>' in html


@pytest.mark.django_db
def test_the_queue_counts_items_per_kind_and_trigger_and_filters_by_them(cast, browser_for):
    file_reviewer_errors(cast, 2)
    action = record(cast.shop)
    request_rollback(requester=cast.ines, trigger="incident", reason="bad batch", actions=[action.pk])
    executive = browser_for(cast.eddie)  # an executive signs neither of these
    assert 'data-testid="queue-empty"' in executive.get(reverse("console:queue")).content.decode()
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert 'data-testid="inbox-kind-signoff">Sign-off<span class="count">2<' in html
    assert 'data-testid="inbox-kind-step">Step needs a person<span class="count">0<' in html
    assert 'data-testid="queue-reviewer_error">Reviewer Error (2)<' in html
    assert 'data-testid="queue-incident">Incident (0)<' in html
    assert 'data-kind="signoff" title="2 Sign-off items waiting for you">Sign-off <b>2</b>' in html  # the header
    filtered = browser_for(cast.vera).get(reverse("console:queue"), {"trigger": "incident"}).content.decode()
    assert 'data-testid="queue-empty"' in filtered
    by_kind = browser_for(cast.vera).get(reverse("console:queue"), {"kind": "remediation"}).content.decode()
    assert 'data-testid="queue-empty"' in by_kind


@pytest.mark.django_db
def test_a_bad_filter_value_never_fails(cast, browser_for):
    file_reviewer_errors(cast, 1)
    client = browser_for(cast.vera)
    for params in ({"kind": "forever"}, {"state": "nonsense"}, {"trigger": "x"}, {"page": "-3"}, {"sort": "?"}):
        response = client.get(reverse("console:queue"), params)
        assert response.status_code == 200 and 'data-testid="queue-empty"' not in response.content.decode()


@pytest.mark.django_db
def test_a_window_about_to_close_stands_out_and_sorts_first(cast, browser_for):
    # refund.issue has a 30-day window: executed 29 days and 20 hours ago, it closes within a day
    fresh = file_reviewer_errors(cast, 1)[0]
    closing = file_reviewer_errors(cast, 1, executed_at=timezone.now() - timedelta(days=29, hours=20))[0]
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert 'class="urgent"' in row_tag(html, closing) and 'class="urgent"' not in row_tag(html, fresh)
    assert html.index(f'data-rollback="{closing}"') < html.index(f'data-rollback="{fresh}"')


@pytest.mark.django_db
def test_signoff_rows_carry_the_batch_checkbox(cast, browser_for, reviewer_error):
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert f'<form id="batch-decision" method="post" action="{reverse("console:batch_decide")}">' in html
    assert f'<input type="checkbox" name="rollback" value="{reviewer_error.pk}" data-trigger="reviewer_error"' in html


@pytest.mark.django_db
def test_the_queue_is_paginated(cast, browser_for):
    file_reviewer_errors(cast, 27)
    client = browser_for(cast.vera)
    first = client.get(reverse("console:queue")).content.decode()
    assert first.count("data-inbox-row") == 25 and "Page 1 of 2" in first
    second = client.get(reverse("console:queue"), {"page": 2}).content.decode()
    assert second.count("data-inbox-row") == 2


@pytest.mark.django_db
def test_the_queue_costs_the_same_queries_for_three_or_thirty_requests(cast, browser_for):
    client = browser_for(cast.vera)
    file_reviewer_errors(cast, 3)
    client.get(reverse("console:queue"))  # warm the session and the policy cache
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("console:queue"))
    file_reviewer_errors(cast, 27)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("console:queue"))
    assert len(many) == len(few)


@pytest.mark.django_db
def test_opening_the_queue_changes_nothing(cast, browser_for, reviewer_error):
    before = snapshot()
    browser_for(cast.vera).get(reverse("console:queue"))
    assert snapshot() == before
