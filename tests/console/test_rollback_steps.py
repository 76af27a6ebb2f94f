"""The request page of a large rollback: its steps a page at a time (filtered by outcome and depth), its progress
counted by the database, no drawing of thousands of boxes, and the same queries whatever its size."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from rollbacks.models import Rollback, Step, StepOutcome
from rollbacks.services import request_rollback
from tests.rollbacks.graphs import build_policy_graph, load_demo_policy_as

pytestmark = pytest.mark.django_db


def policy_reversal(cast, total: int) -> Rollback:
    target_version = load_demo_policy_as(f"console-steps-{total}-targets")
    later_version = load_demo_policy_as(f"console-steps-{total}-later")
    build_policy_graph(
        total=total,
        integrator=cast.shop,
        approver=cast.alice,
        target_version=target_version,
        later_version=later_version,
    )
    return request_rollback(
        requester=cast.paula,
        trigger="policy_reversal",
        reason="the policy version was withdrawn",
        selector={"policy_version": target_version},
    )


def page(client, rollback, query: str = "") -> str:
    response = client.get(reverse("console:rollback", args=[rollback.pk]) + query)
    assert response.status_code == 200
    return response.content.decode()


def shown_steps(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-step="(\d+)"', html)]


@pytest.fixture
def large(cast) -> Rollback:
    """500 steps (200 refunds, 200 points grants, 100 tier upgrades), 9 of them failed."""
    rollback = policy_reversal(cast, 500)
    failed = list(Step.objects.filter(rollback=rollback, depth=1).order_by("id").values_list("pk", flat=True)[:9])
    Step.objects.filter(pk__in=failed).update(outcome=StepOutcome.FAILED)
    return rollback


def test_a_large_rollbacks_page_shows_a_hundred_steps_at_a_time_and_counts_them_all(cast, browser_for, large):
    client = browser_for(cast.paula)
    ordered = list(Step.objects.filter(rollback=large).order_by("depth", "id").values_list("pk", flat=True))

    first, third = page(client, large), page(client, large, "?steps_page=3")

    assert shown_steps(first) == ordered[:100]
    assert shown_steps(third) == ordered[200:300]
    assert "Page 3 of 5 · 500 steps" in third
    assert "steps_page=4" in third and "steps_page=2" in third
    assert 'data-testid="cascade-too-large"' in first and 'data-testid="cascade"' not in first
    assert "<strong>9</strong> need a person" in first and "of 500 done" in first


def test_the_steps_are_filtered_by_outcome_and_depth_and_the_pages_keep_the_filters(cast, browser_for, large):
    client = browser_for(cast.paula)

    failed = page(client, large, "?outcome=failed")
    tiers = page(client, large, "?depth=2&steps_page=2")

    assert sorted(shown_steps(failed)) == sorted(
        Step.objects.filter(rollback=large, outcome="failed").values_list("pk", flat=True)
    )
    assert "9 steps" in failed
    assert len(shown_steps(tiers)) == 100  # a page past the last shows the last
    assert set(Step.objects.filter(pk__in=shown_steps(tiers)).values_list("depth", flat=True)) == {2}
    assert "Page 1 of 1 · 100 steps" in tiers
    assert len(shown_steps(page(client, large, "?depth=1&outcome=pending"))) == 100
    assert "?depth=1&amp;steps_page=2" in page(client, large, "?depth=1")  # the next page's link keeps the filter


@pytest.mark.parametrize("query", ["?outcome=done", "?depth=-2", "?depth=x", "?steps_page=999", "?steps_page=x"])
def test_a_bad_filter_or_page_number_shows_a_page_never_an_error(cast, browser_for, large, query):
    html = page(browser_for(cast.paula), large, query)

    assert len(shown_steps(html)) == 100
    if "steps_page" not in query:
        assert 'data-testid="step-filter-error"' in html


def test_the_page_costs_the_same_queries_for_ten_or_five_hundred_steps(cast, browser_for, large):
    small = policy_reversal(cast, 10)  # small enough to be drawn: one more query for the drawing
    client = browser_for(cast.audrey)
    page(client, small)
    with CaptureQueriesContext(connection) as few:
        page(client, small, "?steps_page=1")
    with CaptureQueriesContext(connection) as many:
        page(client, large, "?steps_page=4&outcome=pending")

    assert len(many) <= len(few)


def test_someone_who_may_not_see_the_rollback_gets_404_and_an_anonymous_caller_the_login_page(cast, browser_for, large):
    assert browser_for(cast.carl).get(reverse("console:rollback", args=[large.pk]) + "?steps_page=2").status_code == 404
    response = browser_for(None).get(reverse("console:rollback", args=[large.pk]) + "?outcome=failed")
    assert response.status_code == 302 and "login" in response["Location"]
