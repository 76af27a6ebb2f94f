import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from policies.selectors import current_policy
from policies.services import load_policy
from rollbacks.models import RequiredSignoff, Rollback
from rollbacks.selectors import queue_for, rollbacks_visible_to
from rollbacks.services import request_rollback, sign_off
from tests.conftest import DEMO_MANIFEST
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def file(cast, *, requester=None, trigger="customer_request", executed_at=None, approved_by="alice"):
    action = record(cast.shop, executed_at=executed_at, approved_by=approved_by)
    return request_rollback(
        requester=requester or cast.shop, trigger=trigger, reason="x", actions=[action.pk], reference="R"
    )


def test_the_queue_is_newest_first(cast):
    older, newer = file(cast), file(cast)

    assert list(queue_for(cast.carl)) == [newer, older]


def test_an_expired_window_puts_the_request_in_the_executives_queue(cast):
    expired = file(cast, executed_at=timezone.now() - timedelta(days=31))
    file(cast)

    assert list(queue_for(cast.eddie)) == [expired]
    assert len(queue_for(cast.carl)) == 2


def test_the_executives_turn_stays_after_customer_service_signed(cast):
    expired = file(cast, executed_at=timezone.now() - timedelta(days=31))
    sign_off(expired.pk, signer=cast.carl, decision="approve")

    assert list(queue_for(cast.carl)) == []
    assert list(queue_for(cast.eddie)) == [expired]


def test_a_verifier_does_not_queue_the_error_in_an_approval_of_their_own(cast):
    theirs = file(cast, requester=cast.bob, trigger="reviewer_error", approved_by="vera")

    assert list(queue_for(cast.vera)) == []
    assert list(queue_for(cast.victor)) == [theirs]


def test_nobody_without_a_signing_role_has_a_queue(cast):
    file(cast)

    for user in (cast.nobody, cast.audrey, cast.shop, cast.alice):
        assert list(queue_for(user)) == []


def test_an_integrator_sees_only_the_requests_it_filed(cast):
    mine = file(cast, requester=cast.shop)
    file(cast, requester=cast.carl)

    assert list(rollbacks_visible_to(cast.shop)) == [mine]
    assert list(rollbacks_visible_to(cast.other_shop)) == []


def another_holder_of(role: str, username: str):
    person = User.objects.create(username=username)
    person.groups.add(Group.objects.get(name=role))
    return person


def test_a_role_whose_count_is_met_leaves_its_other_holders_queue_while_a_second_role_still_waits(cast):
    cora = another_holder_of("customer_service", "cora")
    expired = file(cast, executed_at=timezone.now() - timedelta(days=31))  # customer_service and executive
    assert list(queue_for(cora)) == [expired]

    sign_off(expired.pk, signer=cast.carl, decision="approve")

    assert list(queue_for(cora)) == []
    assert list(queue_for(cast.eddie)) == [expired]
    assert list(queue_for(cast.lex)) == [expired]  # legal and executive: the executive's turn is theirs too


def test_a_role_needing_two_approvals_stays_queued_for_its_holders_after_the_first(cast):
    text = DEMO_MANIFEST.read_text().replace('version = "demo-2026-11"', 'version = "two-agents"', 1)
    text = text.replace(
        'signoffs = [{ role = "customer_service", count = 1 }]', 'signoffs = [{ role = "customer_service", count = 2 }]'
    )
    load_policy(text, actor="test-setup")
    cora, cole = another_holder_of("customer_service", "cora"), another_holder_of("customer_service", "cole")
    rollback = file(cast)

    sign_off(rollback.pk, signer=cast.carl, decision="approve")
    assert list(queue_for(cora)) == list(queue_for(cole)) == [rollback]
    assert list(queue_for(cast.carl)) == []  # one person counts once

    sign_off(rollback.pk, signer=cora, decision="approve")
    assert list(queue_for(cole)) == []


def test_the_queue_reads_no_list_of_ids_however_many_requests_wait(cast):
    # The rows the queue reads, bulk-created: more requests than SQLite takes parameters in one statement (32,766).
    version_id, _ = current_policy()
    waiting = 33_000
    rollbacks = Rollback.objects.bulk_create(
        Rollback(
            trigger="customer_request",
            reason="bulk",
            requested_by=cast.shop,
            policy_version_id=version_id,
            max_cascade_depth=1,
            confirmed_depth=1,
            required_signoffs=[{"role": "customer_service", "count": 1}],
        )
        for _ in range(waiting)
    )
    RequiredSignoff.objects.bulk_create(
        RequiredSignoff(rollback=rollback, role="customer_service", count=1) for rollback in rollbacks
    )
    newest = file(cast)

    queue = queue_for(cast.carl)
    with CaptureQueriesContext(connection) as counted:
        assert queue.count() == waiting + 1
        page = list(queue[:25])
    assert len(page) == 25 and page[0] == newest
    assert all(len(query["sql"]) < 5_000 for query in counted.captured_queries)


def test_a_request_freezes_the_earliest_window_of_its_targets_not_of_its_cascade(cast):
    closing = record(cast.shop, executed_at=timezone.now() - timedelta(days=20))
    fresh = record(cast.shop)
    record(
        cast.shop,
        "loyalty.points_grant",
        caused_by=(fresh.external_id,),
        executed_at=timezone.now() - timedelta(days=29),
    )

    both = request_rollback(requester=cast.shop, trigger="customer_request", reason="x", actions=[fresh.pk, closing.pk])
    alone = request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[fresh.pk])

    assert alone.plan["cascade"] == 1
    assert both.window_closes_at == closing.window_ends_at
    assert alone.window_closes_at == fresh.window_ends_at  # the grant it cascades to closes sooner, but is no target


def test_the_migration_freezes_the_earliest_window_of_rollbacks_filed_before_the_column(cast):
    closing, fresh = record(cast.shop, executed_at=timezone.now() - timedelta(days=20)), record(cast.shop)
    rollback = request_rollback(
        requester=cast.shop, trigger="customer_request", reason="x", actions=[fresh.pk, closing.pk]
    )
    Rollback.objects.update(window_closes_at=None)

    migration = importlib.import_module("rollbacks.migrations.0007_rollback_window_closes_at")
    migration.fill_window_closes_at(apps, None)

    rollback.refresh_from_db()
    assert rollback.window_closes_at == closing.window_ends_at
