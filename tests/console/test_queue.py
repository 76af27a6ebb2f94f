"""The queue: each signer sees what waits for a role they hold, never their own requests."""

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


@pytest.mark.django_db
def test_a_verifier_sees_a_reviewer_error_waiting_for_them(cast, browser_for, reviewer_error):
    response = browser_for(cast.vera).get(reverse("console:queue"))
    assert response.status_code == 200
    assert f'data-rollback="{reviewer_error.pk}"' in response.content.decode()


@pytest.mark.django_db
def test_the_requester_does_not_see_their_own_request_in_the_queue(cast, browser_for, reviewer_error):
    html = browser_for(cast.bob).get(reverse("console:queue")).content.decode()
    assert f'data-rollback="{reviewer_error.pk}"' not in html
    assert "Your recent requests" in html  # but it is listed among what they filed


@pytest.mark.django_db
def test_customer_service_does_not_see_a_reviewer_error(cast, browser_for, reviewer_error):
    html = browser_for(cast.carl).get(reverse("console:queue")).content.decode()
    assert f'data-rollback="{reviewer_error.pk}"' not in html
    assert 'data-testid="queue-empty"' in html


@pytest.mark.django_db
def test_the_queue_counts_requests_per_trigger_and_filters_by_trigger(cast, browser_for):
    file_reviewer_errors(cast, 2)
    action = record(cast.shop)
    request_rollback(requester=cast.ines, trigger="incident", reason="bad batch", actions=[action.pk])
    executive = browser_for(cast.eddie)  # an executive signs neither of these
    assert 'data-testid="queue-empty"' in executive.get(reverse("console:queue")).content.decode()
    html = browser_for(cast.vera).get(reverse("console:queue")).content.decode()
    assert 'data-testid="queue-reviewer_error">Reviewer Error<span class="count">2<' in html
    assert 'data-testid="queue-incident">Incident<span class="count">0<' in html
    filtered = browser_for(cast.vera).get(reverse("console:queue"), {"trigger": "incident"}).content.decode()
    assert 'data-testid="queue-empty"' in filtered


@pytest.mark.django_db
def test_the_age_filter_and_a_bad_filter_value_never_fail(cast, browser_for):
    file_reviewer_errors(cast, 1)
    client = browser_for(cast.vera)
    assert 'data-testid="queue-empty"' in client.get(reverse("console:queue"), {"age": "week"}).content.decode()
    assert 'data-testid="queue-empty"' not in client.get(reverse("console:queue"), {"age": "1h"}).content.decode()
    for params in ({"age": "forever"}, {"state": "nonsense"}, {"trigger": "x"}, {"page": "-3"}, {"sort": "?"}):
        assert client.get(reverse("console:queue"), params).status_code == 200


@pytest.mark.django_db
def test_a_window_about_to_close_stands_out_and_sorts_first_when_asked(cast, browser_for):
    # refund.issue has a 30-day window: executed 29 days and 20 hours ago, it closes within a day
    closing = file_reviewer_errors(cast, 1, executed_at=timezone.now() - timedelta(days=29, hours=20))[0]
    fresh = file_reviewer_errors(cast, 1)[0]
    client = browser_for(cast.vera)
    html = client.get(reverse("console:queue")).content.decode()
    assert f'<tr class="urgent" data-rollback="{closing}"' in html
    assert f'<tr class="" data-rollback="{fresh}"' in html
    assert html.index(f'data-rollback="{fresh}"') < html.index(f'data-rollback="{closing}"')  # newest first
    urgent = client.get(reverse("console:queue"), {"sort": "urgent"}).content.decode()
    assert urgent.index(f'data-rollback="{closing}"') < urgent.index(f'data-rollback="{fresh}"')


@pytest.mark.django_db
def test_the_queue_is_paginated(cast, browser_for):
    file_reviewer_errors(cast, 27)
    client = browser_for(cast.vera)
    first = client.get(reverse("console:queue")).content.decode()
    assert first.count("data-rollback=") == 25 and "Page 1 of 2" in first
    second = client.get(reverse("console:queue"), {"page": 2}).content.decode()
    assert second.count("data-rollback=") == 2


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
