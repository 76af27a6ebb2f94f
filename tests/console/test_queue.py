"""The queue: the inbox as a page; each signer sees what waits for them, never their own requests."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

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


@pytest.fixture
def low_cap(monkeypatch):
    """The counts' cap at 5 and the page at 2 rows, so that a few requests go past both."""
    monkeypatch.setattr("rollbacks.inbox.COUNT_CAP", 5)
    monkeypatch.setattr("console.views.queue.PAGE_SIZE", 2)


@pytest.mark.django_db
def test_counts_past_the_cap_show_the_cap_and_a_plus(cast, browser_for, low_cap):
    file_reviewer_errors(cast, 7)
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert 'data-testid="inbox-kind-signoff">Sign-off<span class="count">5+<' in html
    assert 'data-testid="inbox-all">All<span class="count">5+<' in html
    assert 'data-testid="inbox-kind-step">Step needs a person<span class="count">0<' in html
    assert 'data-testid="queue-reviewer_error">Reviewer Error (5+)<' in html
    assert 'data-kind="signoff" title="5+ Sign-off items waiting for you">Sign-off <b>5+</b>' in html  # the header
    assert 'data-testid="queue-position">Page 1 · 5+ items<' in html  # no "of M": the total is not known
    # Another page asks for the header's counts on its own, capped too.
    other = browser_for(cast.vera).get(reverse("console:rollbacks")).content.decode()
    assert "Sign-off <b>5+</b>" in other


@pytest.mark.django_db
def test_counts_at_the_cap_are_exact_and_the_pages_numbered(cast, browser_for, low_cap):
    file_reviewer_errors(cast, 5)
    html = browser_for(cast.vera).get(reverse("console:queue"), {"page": 3}).content.decode()
    assert 'data-testid="inbox-kind-signoff">Sign-off<span class="count">5<' in html
    assert 'data-testid="queue-position">Page 3 of 3 · 5 items<' in html and "Less urgent" not in html
    past_the_end = browser_for(cast.vera).get(reverse("console:queue"), {"page": 9}).content.decode()
    assert 'data-testid="queue-position">Page 3 of 3 · 5 items<' in past_the_end


@pytest.mark.django_db
def test_pages_past_the_cap_still_navigate_to_the_last_item(cast, browser_for, low_cap):
    ids = file_reviewer_errors(cast, 7)
    client = browser_for(cast.vera)
    seen, number = [], 1
    while True:
        html = client.get(reverse("console:queue"), {"page": number}).content.decode()
        seen += [int(found) for found in re.findall(r'<tr data-inbox-row [^>]*data-rollback="(\d+)"', html)]
        assert f'data-testid="queue-position">Page {number} · 5+ items<' in html
        assert ("More urgent" in html) == (number > 1)
        if "Less urgent" not in html:
            break
        assert f"page={number + 1}" in html
        number += 1
    assert number == 4 and sorted(seen) == sorted(ids) and len(seen) == 7  # 2 + 2 + 2 + 1, none twice


@pytest.mark.django_db
def test_the_queue_costs_the_same_queries_below_and_past_the_cap(cast, browser_for, low_cap):
    client = browser_for(cast.vera)
    file_reviewer_errors(cast, 3)
    client.get(reverse("console:queue"))  # warm the session and the policy cache
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("console:queue"))
    file_reviewer_errors(cast, 9)
    with CaptureQueriesContext(connection) as many:
        client.get(reverse("console:queue"))
    with CaptureQueriesContext(connection) as far:
        client.get(reverse("console:queue"), {"page": 5})
    assert len(many) == len(few) == len(far)


@pytest.mark.django_db
def test_the_api_count_stays_exact_past_the_pages_cap(cast, low_cap):
    file_reviewer_errors(cast, 7)
    client = APIClient()
    client.force_authenticate(cast.vera)
    assert client.get("/api/v1/inbox/").json()["count"] == 7
