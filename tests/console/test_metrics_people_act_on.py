"""The metrics people act on (issue 10): time to decision, waiting past a reminder, windows closed while waiting,
the weekly trend by trigger, reviewers who flag their own approvals, signers who never reject, amounts per
currency; and that the figures cost the same number of queries however much there is to count."""

import itertools
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

import rollbacks.metrics as metrics
from actions.models import Action
from actions.services import record_action
from rollbacks.metrics import RUBBER_STAMP_MIN_DECISIONS, parse_period, remind_after, rollback_metrics
from rollbacks.models import Rollback, RollbackState
from rollbacks.services import cancel_rollback, request_rollback, sign_off

from .conftest import incident_commander, run_to_rest, snapshot

URL = "/api/v1/metrics/"
_ids = itertools.count(1)


def api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def refund(cast: Any, *, approved_by: str = "alice", amount: str = "25.00", currency: str | None = "EUR") -> Action:
    """A refund in `currency` (None: the payload names none)."""
    executed_at = timezone.now() - timedelta(hours=1)
    payload: dict[str, Any] = {"amount": amount}
    if currency is not None:
        payload["currency"] = currency
    action, _ = record_action(
        cast.shop,
        {
            "external_id": f"acted-on-{next(_ids)}",
            "action_type": "refund.issue",
            "subject": "customer:77",
            "payload": payload,
            "executed_at": executed_at.isoformat(),
            "approved_by": approved_by,
            "approved_at": (executed_at - timedelta(seconds=30)).isoformat(),
        },
    )
    return action


def backdate(rollback: Rollback, **moments: Any) -> None:
    """Requests filed over days: the services stamp `now`, the figures read the stamps."""
    Rollback.objects.filter(pk=rollback.pk).update(**moments)


@pytest.fixture
def season(cast, eager_workers, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    """alice approves five refunds (three EUR, one USD, one naming no currency), bob two.
    - alice flags two of her own as reviewer errors: victor verifies one (filed 2 h before), vera rejects the other;
    - bob flags one of alice's (not a self-flag) and cancels it;
    - carl files a customer request over bob's refund, still pending for 6 h;
    - ines files an incident over alice's USD and no-currency refunds, which ivan authorizes after 10 h."""
    euro = [refund(cast) for _ in range(3)]
    dollars = refund(cast, amount="40.00", currency="USD")
    plain = refund(cast, amount="7.50", currency=None)
    bobs = [refund(cast, approved_by="bob") for _ in range(2)]
    now = timezone.now()

    verified = request_rollback(
        requester=cast.alice, trigger="reviewer_error", reason="my mistake", actions=[euro[0].pk]
    )
    backdate(verified, created_at=now - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(verified.pk, signer=cast.victor, decision="approve")
    run_to_rest(verified.pk, django_capture_on_commit_callbacks)

    refused = request_rollback(requester=cast.alice, trigger="reviewer_error", reason="unsure", actions=[euro[1].pk])
    sign_off(refused.pk, signer=cast.vera, decision="reject", comment="The refund was right.")

    others = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="alice erred", actions=[euro[2].pk])
    cancel_rollback(others.pk, actor=cast.bob)

    waiting = request_rollback(requester=cast.carl, trigger="customer_request", reason="asked", actions=[bobs[0].pk])
    backdate(waiting, created_at=now - timedelta(hours=6))

    incident = request_rollback(
        requester=cast.ines, trigger="incident", reason="agent bug", actions=[dollars.pk, plain.pk]
    )
    backdate(incident, created_at=now - timedelta(hours=10))
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(incident.pk, signer=incident_commander("ivan"), decision="approve")
    run_to_rest(incident.pk, django_capture_on_commit_callbacks)
    return SimpleNamespace(verified=verified, refused=refused, others=others, waiting=waiting, incident=incident)


@pytest.mark.django_db
def test_time_to_decision_runs_from_filing_to_authorization_per_trigger(cast, season):
    rows = {row["trigger"]: row for row in api(cast.audrey).get(URL).json()["time_to_decision"]}
    assert set(rows) == {"reviewer_error", "incident"}  # the rejected, cancelled and pending ones are undecided
    assert rows["reviewer_error"]["count"] == 1
    assert 2 * 3600 <= rows["reviewer_error"]["p50_seconds"] == rows["reviewer_error"]["p90_seconds"] < 2 * 3600 + 60
    assert 10 * 3600 <= rows["incident"]["p90_seconds"] < 10 * 3600 + 60


@pytest.mark.django_db
def test_waiting_reads_each_trigger_s_remind_after_from_the_manifest(cast, season):
    body = api(cast.audrey).get(URL).json()["waiting"]
    customer = next(row for row in body["by_trigger"] if row["trigger"] == "customer_request")
    # The demo manifest reminds after 4 h; carl's request has waited 6 h.
    assert customer == {
        "trigger": "customer_request",
        "remind_after_seconds": 14400.0,
        "pending": 1,
        "past_reminder": 1,
    }


@pytest.mark.django_db
def test_waiting_counts_nothing_past_a_reminder_where_no_trigger_sets_one(cast, season, monkeypatch):
    version_id, manifest = metrics.current_policy()
    triggers = {name: {} for name in manifest.triggers}
    monkeypatch.setattr(metrics, "current_policy", lambda: (version_id, SimpleNamespace(triggers=triggers)))
    body = api(cast.audrey).get(URL).json()["waiting"]
    assert (body["pending"], body["past_reminder"]) == (1, 0)
    customer = next(row for row in body["by_trigger"] if row["trigger"] == "customer_request")
    assert customer == {"trigger": "customer_request", "remind_after_seconds": None, "pending": 1, "past_reminder": 0}


@pytest.mark.django_db
def test_requests_pending_longer_than_their_triggers_remind_after_are_counted(cast, season, monkeypatch):
    version_id, manifest = metrics.current_policy()
    triggers = dict(manifest.triggers)
    triggers["customer_request"] = {"remind_after": "4h"}  # older than 4 h: carl's request (6 h)
    triggers["reviewer_error"] = SimpleNamespace(remind_after=timedelta(hours=1))  # none pending
    triggers["incident"] = {"remind_after": "8h"}
    monkeypatch.setattr(metrics, "current_policy", lambda: (version_id, SimpleNamespace(triggers=triggers)))
    fresh = request_rollback(requester=cast.carl, trigger="customer_request", reason="again", actions=[refund(cast).pk])
    body = api(cast.audrey).get(URL).json()["waiting"]
    customer = next(row for row in body["by_trigger"] if row["trigger"] == "customer_request")
    assert customer == {
        "trigger": "customer_request",
        "remind_after_seconds": 14400.0,
        "pending": 2,
        "past_reminder": 1,
    }
    assert (body["pending"], body["past_reminder"]) == (2, 1)
    backdate(fresh, created_at=timezone.now() - timedelta(hours=4, minutes=1))
    assert api(cast.audrey).get(URL).json()["waiting"]["past_reminder"] == 2


def test_remind_after_reads_a_duration_text_or_a_timedelta_and_ignores_what_is_neither():
    assert remind_after({"remind_after": "4h"}) == timedelta(hours=4)
    assert remind_after(SimpleNamespace(remind_after=timedelta(minutes=5))) == timedelta(minutes=5)
    assert remind_after(SimpleNamespace(name="incident")) is None
    assert remind_after({"remind_after": "soon"}) is None


@pytest.mark.django_db
def test_a_window_that_closed_while_the_request_waited_is_counted_once_and_not_before_it_closes(cast, season):
    now = timezone.now()
    backdate(season.waiting, window_closes_at=now - timedelta(hours=1))  # closed 5 h after filing, still pending
    backdate(season.verified, window_closes_at=now - timedelta(hours=3))  # closed before filing: not while waiting
    backdate(season.refused, window_closes_at=now + timedelta(hours=1))  # rejected before it closes
    period = parse_period(None, None)
    figures = rollback_metrics(period)["windows_closed_while_waiting"]
    assert figures == {
        "count": 1,
        "still_pending": 1,
        "by_trigger": [{"trigger": "customer_request", "count": 1, "still_pending": 1}],
    }
    later = rollback_metrics(parse_period(None, None, now=now + timedelta(hours=2)), now=now + timedelta(hours=2))
    assert later["windows_closed_while_waiting"]["count"] == 1  # the rejection came before the window closed
    backdate(season.incident, window_closes_at=now - timedelta(hours=9))  # closed an hour into its ten-hour wait
    assert rollback_metrics(period)["windows_closed_while_waiting"]["count"] == 2


@pytest.mark.django_db
def test_the_weekly_trend_counts_rollbacks_by_trigger_with_empty_weeks_as_zero(cast, season):
    backdate(season.refused, created_at=timezone.now() - timedelta(days=14))
    trend = api(cast.audrey).get(URL).json()["weekly_rollbacks_by_trigger"]
    assert 5 <= len(trend["weeks"]) <= 6  # the 30 days of the default period
    rows = {row["trigger"]: row["counts"] for row in trend["triggers"]}
    assert all(len(counts) == len(trend["weeks"]) for counts in rows.values())
    assert sum(rows["reviewer_error"]) == 3 and sum(rows["incident"]) == sum(rows["customer_request"]) == 1
    assert rows["incident"][-1] == 1 or rows["incident"][-2] == 1  # this week (or last, early on a Monday)
    assert max(rows["reviewer_error"]) == 2 and 0 in rows["reviewer_error"]


@pytest.mark.django_db
def test_a_reviewer_who_flags_their_own_approvals_is_shown_with_the_share_and_its_weekly_trend(cast, season):
    rows = {row["reviewer"]: row for row in api(cast.vera).get(URL).json()["reviewer_self_flags"]}
    alice = rows["alice"]
    # five approvals; two flagged by alice herself (verified or not); bob's flag of her refund is not hers
    assert (alice["approvals"], alice["self_flagged"], alice["share"]) == (5, 2, 0.4)
    assert (rows["bob"]["approvals"], rows["bob"]["self_flagged"], rows["bob"]["share"]) == (2, 0, 0.0)
    flagged_weeks = [week for week in alice["weekly"] if week["approvals"]]
    assert flagged_weeks == [{"week": flagged_weeks[0]["week"], "approvals": 5, "self_flagged": 2, "share": 0.4}]
    assert [week["week"] for week in alice["weekly"]] == api(cast.vera).get(URL).json()["weekly_rollbacks_by_trigger"][
        "weeks"
    ]


@pytest.mark.django_db
def test_signers_show_how_often_they_reject_and_one_who_never_rejects_is_flagged(
    cast, season, django_capture_on_commit_callbacks
):
    body = api(cast.audrey).get(URL).json()
    rows = {row["signer"]: row for row in body["signer_decisions"]}
    assert rows["vera"] | {"by_trigger": None} == {
        "signer": "vera",
        "decisions": 1,
        "approvals": 0,
        "rejections": 1,
        "reject_rate": 1.0,
        "possible_rubber_stamp": False,
        "by_trigger": None,
    }
    assert [row["trigger"] for row in rows["vera"]["by_trigger"]] == ["reviewer_error"]
    assert rows["victor"]["reject_rate"] == 0.0 and not rows["victor"]["possible_rubber_stamp"]  # one decision
    assert body["rubber_stamp_min_decisions"] == RUBBER_STAMP_MIN_DECISIONS

    for _ in range(RUBBER_STAMP_MIN_DECISIONS - 1):
        filed = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="r", actions=[refund(cast).pk])
        with django_capture_on_commit_callbacks(execute=False):
            sign_off(filed.pk, signer=cast.victor, decision="approve")
    rows = {row["signer"]: row for row in api(cast.audrey).get(URL).json()["signer_decisions"]}
    victor = rows["victor"]
    assert (victor["decisions"], victor["rejections"], victor["possible_rubber_stamp"]) == (10, 0, True)
    assert victor["by_trigger"][0]["possible_rubber_stamp"] is True
    assert api(cast.audrey).get(URL).json()["signer_decisions"][0]["signer"] == "victor"  # flagged ones first


@pytest.mark.django_db
def test_amounts_reversed_are_summed_per_currency_and_never_mixed(cast, season):
    cost = api(cast.audrey).get(URL).json()["cost"]
    assert cost["amount_reversed_by_currency"] == [
        {"currency": "EUR", "amount": "25.00", "steps": 1},
        {"currency": "USD", "amount": "40.00", "steps": 1},
        {"currency": None, "amount": "7.50", "steps": 1},
    ]
    assert cost["amount_reversed"] == "72.50"  # the old field is unchanged: one number over every currency


@pytest.mark.django_db
def test_the_new_figures_are_refused_to_people_who_neither_audit_nor_sign(cast, season):
    for user in (cast.alice, cast.shop, cast.nobody):
        assert api(user).get(URL).status_code == 403
    assert APIClient().get(URL).status_code == 401


@pytest.mark.django_db
def test_the_schema_documents_the_metrics_answer_and_its_errors(cast):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/metrics/"]["get"]
    assert {"200", "400", "401", "403", "429"} <= set(operation["responses"])
    properties = schema["components"]["schemas"]["Metrics"]["properties"]
    for field in (
        "time_to_decision",
        "waiting",
        "windows_closed_while_waiting",
        "weekly_rollbacks_by_trigger",
        "reviewer_self_flags",
        "signer_decisions",
        "rubber_stamp_min_decisions",
        "cost",
    ):
        assert field in properties


def _figures_queries(user: Any) -> int:
    """Queries of one call, once the policy's parse is cached (the first call after a load parses it)."""
    api(user).get(URL)
    with CaptureQueriesContext(connection) as queries:
        response = api(user).get(URL)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
def test_the_figures_cost_the_same_queries_for_many_rollbacks_reviewers_and_signers(
    cast, eager_workers, django_capture_on_commit_callbacks
):
    def season_of(reviewer: str) -> None:
        from django.contrib.auth.models import Group, User

        User.objects.get_or_create(username=reviewer)[0].groups.add(Group.objects.get(name="reviewer"))
        mine = refund(cast, approved_by=reviewer, currency="GBP")
        flagged = request_rollback(
            requester=User.objects.get(username=reviewer), trigger="reviewer_error", reason="r", actions=[mine.pk]
        )
        with django_capture_on_commit_callbacks(execute=False):
            sign_off(flagged.pk, signer=cast.victor, decision="approve")
        request_rollback(requester=cast.carl, trigger="customer_request", reason="r", actions=[refund(cast).pk])

    season_of("rhea")
    few = _figures_queries(cast.audrey)
    for index in range(12):
        season_of(f"reviewer-{index}")
    run_to_rest(Rollback.objects.filter(state=RollbackState.AUTHORIZED).first().pk, django_capture_on_commit_callbacks)
    assert _figures_queries(cast.audrey) == few


@pytest.mark.django_db
def test_the_metrics_page_draws_the_new_charts_with_table_fallbacks_and_changes_nothing(cast, browser_for, season):
    before = snapshot()
    response = browser_for(cast.audrey).get(reverse("console:metrics"))
    assert response.status_code == 200
    html = response.content.decode()
    for testid in ("time-to-decision", "waiting", "weekly-trend", "reviewer-self-flags", "signer-decisions"):
        assert f'data-testid="{testid}"' in html
    assert 'aria-label="Rollbacks filed per week, by trigger"' in html
    assert "40.00 USD" in html and "25.00 EUR" in html and '7.50 <span class="muted">(no currency)</span>' in html
    assert "2 of 5" in html  # alice's self-flagged approvals
    assert snapshot() == before


@pytest.mark.django_db
def test_the_metrics_page_is_refused_to_people_who_neither_audit_nor_sign(cast, browser_for):
    assert browser_for(cast.alice).get(reverse("console:metrics")).status_code == 403
