"""An incident's whole life in queries: filing (selector, cascade walk, frozen steps), signing and executing to
`completed` cost a number of queries that does not grow per step; the incident's writes go in batches."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.services import record_actions
from audit.models import AuditEvent, AuditLink
from rollbacks import services
from rollbacks.models import Rollback, Step
from tests.rollbacks.executing import shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import colleague

pytestmark = pytest.mark.django_db


def record_incident(cast, day: int, pairs: int) -> dict[str, str]:
    """`pairs` benefit re-evaluations an agent ran on day `day` of November 2026, each with the reinstatement it
    caused (two levels, python methods): 2 x `pairs` actions. Returns the selector that picks the first ones."""
    items = []
    for index in range(pairs):
        first = f"day{day}-{index}-benefits"
        common = {
            "subject": f"customer:{index}",
            "payload": {"amount": "25.00", "currency": "EUR"},
            "executed_at": f"2026-11-{day:02d}T10:00:00+00:00",
            "approved_by": "alice",
            "approved_at": f"2026-11-{day:02d}T09:59:30+00:00",
        }
        items.append({**common, "external_id": first, "action_type": "benefits.reevaluate", "caused_by": []})
        items.append(
            {
                **common,
                "external_id": f"day{day}-{index}-member",
                "action_type": "membership.reinstate",
                "caused_by": [first],
            }
        )
    for start in range(0, len(items), 500):
        record_actions(cast.shop, items[start : start + 500])
    return {
        "action_type": "benefits.reevaluate",
        "executed_after": f"2026-11-{day:02d}T00:00:00+00:00",
        "executed_before": f"2026-11-{day:02d}T23:59:59+00:00",
    }


def incident_queries(cast, worker, capture, *, day: int, pairs: int) -> tuple[Rollback, int]:
    """File (by selector), sign and run an incident to its end in this process, counting every query."""
    selector = record_incident(cast, day, pairs)
    second_commander = colleague("ivan", "incident_commander")
    with CaptureQueriesContext(connection) as queries:
        rollback = services.request_rollback(
            requester=cast.ines,
            trigger="incident",
            reason="the agent re-evaluated the wrong customers",
            selector=selector,
        )
        with capture(execute=True):
            services.sign_off(rollback.pk, signer=second_commander, decision="approve")
        worker()
    rollback.refresh_from_db()
    return rollback, len(queries)


def test_filing_and_running_an_incident_of_two_hundred_costs_no_more_queries_per_step_than_one_of_ten(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    incident_queries(cast, worker, django_capture_on_commit_callbacks, day=1, pairs=2)  # warms per-process caches
    small, small_queries = incident_queries(cast, worker, django_capture_on_commit_callbacks, day=2, pairs=5)
    large, large_queries = incident_queries(cast, worker, django_capture_on_commit_callbacks, day=3, pairs=100)

    assert small.state == large.state == "completed"
    assert Step.objects.filter(rollback=small).count() == 10
    assert Step.objects.filter(rollback=large).count() == 200
    assert Step.objects.filter(rollback=large, depth=1, via__depth=0).count() == 100
    # Twenty times the steps: fewer queries per step, and each extra step costs at most a fixed handful: the
    # durable `reverse` phase writes each step's progress in a transaction of its own (its savepoint, the phase,
    # the audit event, the release, the commit setting: 5 statements), everything else is per batch or per level.
    # Measured: 5.5 per extra step on PostgreSQL, 6.4 on SQLite (whose audit writer has no one-call append).
    assert large_queries / 200 <= small_queries / 10
    assert (large_queries - small_queries) / (200 - 10) <= 7


def test_the_requested_event_links_every_planned_action_and_is_one_event(
    cast, shop, worker, django_capture_on_commit_callbacks, monkeypatch
):
    from audit import services as audit_services

    monkeypatch.setattr(audit_services, "LINK_BATCH", 7)  # many batches from the one iterator of ids
    selector = record_incident(cast, 4, 20)

    rollback = services.request_rollback(requester=cast.ines, trigger="incident", reason="wrong run", selector=selector)

    planned = set(Step.objects.filter(rollback=rollback).values_list("action_id", flat=True))
    assert set(AuditLink.objects.filter(rollback_id=rollback.pk).values_list("action_id", flat=True)) == planned
    assert len(planned) == 40
    assert AuditEvent.objects.filter(rollback_id=rollback.pk, kind="rollback.requested").count() == 1
    assert AuditEvent.objects.filter(rollback_id=rollback.pk, kind="action.state_changed").count() == 40


def test_steps_frozen_in_many_batches_each_know_the_step_they_were_reached_from(cast, monkeypatch):
    monkeypatch.setattr(services, "FREEZE_BATCH", 3)
    selector = record_incident(cast, 5, 8)

    rollback = services.request_rollback(requester=cast.ines, trigger="incident", reason="wrong run", selector=selector)

    steps = Step.objects.filter(rollback=rollback).select_related("action", "via__action")
    assert steps.count() == 16
    for step in steps.filter(depth=1):
        assert step.via.depth == 0
        assert step.via.action.external_id == step.action.external_id.replace("-member", "-benefits")
    assert not steps.filter(depth=0, via__isnull=False).exists()
    assert {step.action.state for step in steps} == {"rollback_pending"}
