"""GET /api/v1/metrics/ and the metrics page: rollback rate, time to rollback, reasons and cost."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from rollbacks.models import RemediationTask
from rollbacks.services import request_rollback, sign_off

from .conftest import incident_commander, record, run_to_rest, snapshot

URL = "/api/v1/metrics/"


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def history(cast, eager_workers, django_capture_on_commit_callbacks):
    """Four refunds approved by alice and one by bob; two of alice's reversed, one wire transfer to remediate."""
    refunds = [record(cast.shop, amount="25.00") for _ in range(3)] + [record(cast.shop, approved_by="bob")]
    wire = record(cast.shop, "wire.transfer", amount="900.00", approved_by="bob")
    rollback = request_rollback(
        requester=cast.ines, trigger="incident", reason="agent bug", actions=[refunds[0].pk, refunds[1].pk, wire.pk]
    )
    request_rollback(requester=cast.carl, trigger="customer_request", reason="asked", actions=[refunds[3].pk])
    second = incident_commander("ivan")  # ines filed it, so another commander signs
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=second, decision="approve")
    return run_to_rest(rollback.pk, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_metrics_need_a_signed_in_caller(cast):
    assert api().get(URL).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["alice", "shop", "nobody"])
def test_metrics_are_refused_to_people_who_neither_audit_nor_sign(cast, name):
    assert api(getattr(cast, name)).get(URL).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params", [{"since": "yesterday"}, {"until": "2026-13-40"}, {"since": "2026-12-01", "until": "2026-11-01"}]
)
def test_bad_dates_are_a_400_naming_the_field(cast, params):
    response = api(cast.audrey).get(URL, params)
    assert response.status_code == 400
    assert set(response.json()) <= {"since", "until"} and response.json()


@pytest.mark.django_db
def test_metrics_count_rates_times_reasons_and_cost(cast, history):
    body = api(cast.audrey).get(URL).json()
    by_type = {row["action_type"]: row for row in body["rollback_rate"]["by_action_type"]}
    assert by_type["refund.issue"] == {"action_type": "refund.issue", "recorded": 4, "rolled_back": 2, "rate": 0.5}
    by_approver = {row["approved_by"]: row for row in body["rollback_rate"]["by_approver"]}
    assert (by_approver["alice"]["recorded"], by_approver["alice"]["rolled_back"]) == (3, 2)
    assert by_approver["bob"]["rolled_back"] == 0  # the wire transfer waits for a person
    timing = body["time_to_rollback"]
    assert timing["count"] == 2 and 0 < timing["p50_seconds"] <= timing["p90_seconds"] <= timing["max_seconds"]
    triggers = {row["trigger"]: row for row in body["reasons_by_trigger"]}
    assert triggers["incident"]["top_reasons"] == [{"reason": "agent bug", "count": 1}]
    assert triggers["customer_request"]["rollbacks"] == 1
    cost = body["cost"]
    assert cost["amount_reversed"] == "50.00"
    assert cost["compensations"] == 2  # refund_reversed to the customer, once per reversed refund
    assert cost["manual_remediations"] == RemediationTask.objects.count() == 1


@pytest.mark.django_db
def test_a_period_before_everything_is_empty(cast, history):
    body = api(cast.vera).get(URL, {"since": "2020-01-01", "until": "2020-01-31"}).json()
    assert body["rollback_rate"] == {"by_action_type": [], "by_approver": []}
    assert body["time_to_rollback"]["p50_seconds"] is None
    assert body["cost"]["amount_reversed"] == "0.00"


@pytest.mark.django_db
def test_the_metrics_page_draws_the_charts_and_changes_nothing(cast, browser_for, history):
    before = snapshot()
    response = browser_for(cast.audrey).get(reverse("console:metrics"))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") >= 3 and "2 of 4 · 50.0%" in html and "agent bug" in html
    assert snapshot() == before


@pytest.mark.django_db
def test_the_metrics_page_says_what_was_wrong_with_a_date(cast, browser_for):
    response = browser_for(cast.vera).get(reverse("console:metrics"), {"since": "soon"})
    assert response.status_code == 400
    assert b"Give an ISO 8601 date" in response.content
