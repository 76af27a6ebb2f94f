"""A policy_reversal of every action approved under one policy version: the plan's cost in queries grows with
the cascade's depth, and with the number of actions only by a few statements per batch of FREEZE_BATCH actions
(steps and state changes are written in batches so that memory stays bounded), never per action."""

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rollbacks.models import Step
from rollbacks.services import FREEZE_BATCH, request_rollback
from tests.rollbacks.graphs import build_policy_graph, load_demo_policy_as

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite splits large statements by its parameter cap"),
    pytest.mark.django_db,
]
AUDIT_INSERTS = ('INSERT INTO "audit_auditevent"', 'INSERT INTO "audit_auditlink"')


def request_policy_reversal(cast, version_id):
    with CaptureQueriesContext(connection) as captured:
        rollback = request_rollback(
            requester=cast.paula,
            trigger="policy_reversal",
            reason="the policy version was withdrawn",
            selector={"policy_version": version_id},
        )
    return rollback, [query["sql"] for query in captured.captured_queries]


def test_planning_ten_thousand_actions_costs_a_hundreds_queries_and_a_few_per_batch(cast):
    warm_version = load_demo_policy_as("scale-warm")
    small_version = load_demo_policy_as("scale-small")
    large_version = load_demo_policy_as("scale-large")
    later_version = load_demo_policy_as("scale-later")  # current: the cascade's types come from it
    small = build_policy_graph(
        total=100, integrator=cast.shop, approver=cast.alice, target_version=small_version, later_version=later_version
    )
    large = build_policy_graph(
        total=10_000,
        integrator=cast.shop,
        approver=cast.alice,
        target_version=large_version,
        later_version=later_version,
    )
    build_policy_graph(
        total=10, integrator=cast.shop, approver=cast.alice, target_version=warm_version, later_version=later_version
    )
    request_policy_reversal(cast, warm_version)  # warms per-process caches (content types, the parsed policy)

    small_rollback, small_queries = request_policy_reversal(cast, small_version)
    large_rollback, large_queries = request_policy_reversal(cast, large_version)

    assert small_rollback.plan | {"action_ids": None} == {
        "actions": small,
        "cascade": 60,
        "irreversible": 0,
        "window_expired": 0,
        "already_reversed": 0,
        "action_ids": None,
    }
    assert large_rollback.plan["actions"] == large == 4000 and large_rollback.plan["cascade"] == 6000
    assert Step.objects.filter(rollback=large_rollback).count() == 10_000
    assert Step.objects.filter(rollback=large_rollback, depth=2).exclude(via__depth=1).count() == 0

    def planning(queries):
        return [sql for sql in queries if not sql.startswith(AUDIT_INSERTS)]

    def audit_inserts(queries):
        return [sql for sql in queries if sql.startswith(AUDIT_INSERTS)]

    # A hundred actions fit in one batch; ten thousand take ceil(10,000 / FREEZE_BATCH) per level at most. Each
    # batch costs a bounded number of statements (the steps' insert, the lookup of the steps they were reached
    # from, the actions' locks and state change with its savepoints), so the difference is a handful per batch.
    batches = math.ceil(4000 / FREEZE_BATCH) * 2 + math.ceil(2000 / FREEZE_BATCH) + math.ceil(10_000 / FREEZE_BATCH)
    extra = len(planning(large_queries)) - len(planning(small_queries))
    assert 0 < extra <= 8 * batches
    # The audit trail takes one event per action whose state moves, and one link per planned action; its
    # writer inserts them in batches (1,000 events, 2,000 links), so only those inserts follow the size.
    events, links = 10_000 + 1, 10_000
    assert len(audit_inserts(large_queries)) <= math.ceil(events / 1000) + math.ceil(links / 2000) + 1
    assert len(audit_inserts(small_queries)) <= 3
