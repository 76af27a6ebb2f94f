"""GET /api/v1/rollbacks/{id}/steps/ pages through a large rollback's steps, filtered by outcome and depth, with
the counts of every outcome; the detail keeps `steps` for a small rollback and caps it for a large one."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from rollbacks import selectors
from rollbacks.models import Rollback, Step, StepOutcome
from rollbacks.services import request_rollback
from tests.rollbacks.graphs import build_policy_graph, load_demo_policy_as

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def policy_reversal(cast, total: int) -> Rollback:
    """A policy_reversal over `total` actions (refunds, their points grants, every second grant's tier upgrade)."""
    target_version = load_demo_policy_as(f"steps-api-{total}-targets")
    later_version = load_demo_policy_as(f"steps-api-{total}-later")
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


def steps_url(rollback: Rollback, query: str = "") -> str:
    return f"/api/v1/rollbacks/{rollback.pk}/steps/{query}"


@pytest.fixture
def large(cast) -> Rollback:
    """250 steps: 100 refunds at depth 0, 100 points grants at depth 1, 50 tier upgrades at depth 2."""
    rollback = policy_reversal(cast, 250)
    some_tiers = Step.objects.filter(rollback=rollback, depth=2).order_by("id").values_list("pk", flat=True)[:7]
    Step.objects.filter(pk__in=list(some_tiers)).update(outcome=StepOutcome.FAILED)
    return rollback


def test_the_steps_come_a_page_at_a_time_by_depth_and_id_with_every_outcome_counted(cast, large):
    response = client_for(cast.paula).get(steps_url(large, "?limit=40&offset=80"))

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 250
    expected = list(Step.objects.filter(rollback=large).order_by("depth", "id").values_list("pk", flat=True))
    assert [step["id"] for step in body["results"]] == expected[80:120]
    assert set(body["results"][0]) == {"id", "action", "depth", "outcome", "attempts", "detail", "is_loop"}
    assert body["step_counts"] == {outcome: 0 for outcome in StepOutcome.values} | {"pending": 243, "failed": 7}
    assert "offset=120" in body["next"] and "offset=40" in body["previous"]


def test_the_default_page_is_a_hundred_steps_and_no_page_is_longer_than_a_thousand(cast, large):
    client = client_for(cast.paula)

    assert len(client.get(steps_url(large)).json()["results"]) == 100
    assert client.get(steps_url(large, "?limit=5000")).json()["results"].__len__() == 250  # lowered to 1000


def test_the_steps_are_filtered_by_one_or_several_outcomes_and_by_depth(cast, large):
    client = client_for(cast.lena)  # a signing role of policy_reversal sees it

    failed = client.get(steps_url(large, "?outcome=failed")).json()
    either = client.get(steps_url(large, "?outcome=failed&outcome=pending&depth=2")).json()
    targets = client.get(steps_url(large, "?depth=0&limit=1000")).json()

    assert failed["count"] == 7 and {step["outcome"] for step in failed["results"]} == {"failed"}
    assert either["count"] == 50 and {step["depth"] for step in either["results"]} == {2}
    assert targets["count"] == 100 and {step["depth"] for step in targets["results"]} == {0}
    assert failed["step_counts"]["pending"] == 243  # the counts are the whole rollback's, whatever the filters


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?outcome=done", "outcome"),
        ("?depth=-1", "depth"),
        ("?depth=one", "depth"),
        ("?depth=1.5", "depth"),
        ("?limit=ten", "limit"),
        ("?offset=-3", "offset"),
        ("?limit=5&limit=6", "limit"),
    ],
)
def test_a_bad_filter_or_page_is_a_400_naming_it(cast, large, query, field):
    response = client_for(cast.paula).get(steps_url(large, query))

    assert response.status_code == 400
    assert field in response.json()


def test_someone_who_may_not_see_the_rollback_gets_404_and_an_anonymous_caller_401(cast, large):
    assert client_for(cast.carl).get(steps_url(large)).status_code == 404
    assert client_for(cast.paula).get("/api/v1/rollbacks/999999999/steps/").status_code == 404
    assert client_for(None).get(steps_url(large)).status_code == 401


def test_a_page_of_steps_costs_the_same_queries_for_ten_or_two_hundred_and_fifty_steps(cast, large):
    small = policy_reversal(cast, 10)
    client = client_for(cast.paula)
    client.get(steps_url(small))  # warms per-process caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(steps_url(small, "?offset=2")).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert client.get(steps_url(large, "?offset=120")).status_code == 200

    assert len(many) == len(few)


def test_a_small_rollbacks_detail_keeps_every_step_and_a_large_ones_the_first_few(cast, large, monkeypatch):
    small = policy_reversal(cast, 10)
    client = client_for(cast.paula)
    monkeypatch.setattr(selectors, "STEPS_INLINE", 100)

    small_body = client.get(f"/api/v1/rollbacks/{small.pk}/").json()
    large_body = client.get(f"/api/v1/rollbacks/{large.pk}/").json()

    assert len(small_body["steps"]) == small_body["steps_total"] == 10
    assert small_body["progress"] == {"total": 10, "finished": 0, "needs_person": 0, "waiting": 0, "percent": 0}
    first = list(Step.objects.filter(rollback=large).order_by("depth", "id").values_list("pk", flat=True)[:100])
    assert [step["id"] for step in large_body["steps"]] == first
    assert large_body["steps_total"] == 250
    assert large_body["step_counts"]["failed"] == 7
    assert large_body["progress"] == {"total": 250, "finished": 0, "needs_person": 7, "waiting": 0, "percent": 0}
