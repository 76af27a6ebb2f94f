"""The inbox: what each person may act on now, of every kind, most urgent first; an item leaves when it is done
or no longer theirs; a page costs the same queries whatever the number of items."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rollbacks import execution, services
from rollbacks.announcements import Item, people_for
from rollbacks.inbox import inbox_counts, inbox_for
from rollbacks.models import RemediationTask
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def kinds(user, **filters) -> list[tuple[str, int, int | None]]:
    return [(item.kind, item.rollback, item.step) for item in inbox_for(user, **filters)[:100]]


def reviewer_error(cast, *, executed_at=None):
    action = record(cast.shop, executed_at=executed_at)
    return services.request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="approved by mistake", actions=[action.pk]
    )


def test_a_request_waiting_for_a_verifier_is_a_signoff_item_for_verifiers_only(cast):
    rollback = reviewer_error(cast)

    assert kinds(cast.vera) == [("signoff", rollback.pk, None)]
    assert kinds(cast.victor) == [("signoff", rollback.pk, None)]
    for person in (cast.bob, cast.alice, cast.carl, cast.audrey, cast.nobody, cast.shop):
        assert kinds(person) == [], person.username
    assert inbox_counts(cast.vera) == {"signoff": 1, "confirm_cascade": 0, "step": 0, "remediation": 0}


def test_a_signoff_item_says_what_is_reversed_and_when_its_window_closes(cast):
    rollback = reviewer_error(cast)

    [item] = inbox_for(cast.vera)[:1]
    assert item.summary == "Sign off reversing refund.issue on customer:1001 (25.00 EUR)"
    assert item.trigger == "reviewer_error" and item.since == rollback.created_at
    assert item.window_closes_at == rollback.window_closes_at is not None


def test_a_bulk_request_says_how_many_actions_it_reverses(cast):
    actions = [record(cast.shop) for _ in range(3)]
    services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="bad batch", actions=[a.pk for a in actions]
    )

    [item] = inbox_for(cast.carl)[:5]
    assert item.summary == "Sign off reversing refund.issue on customer:1001 (25.00 EUR) and 2 more actions"
    assert item.what["actions"] == 3


def test_once_signed_the_item_leaves_the_signers_inbox(cast, django_capture_on_commit_callbacks):
    rollback = reviewer_error(cast)
    with django_capture_on_commit_callbacks(execute=False):
        services.sign_off(rollback.pk, signer=cast.vera, decision="approve")

    assert kinds(cast.vera) == [] and kinds(cast.victor) == []


def test_a_paused_cascade_is_a_confirm_item_until_someone_confirms_it(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund, *_] = chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=1)
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "paused"

    assert kinds(cast.carl) == [("confirm_cascade", rollback.pk, None)]
    assert "Confirm the cascade beyond depth 1" in inbox_for(cast.carl)[0].summary
    assert kinds(cast.vera) == [] and kinds(cast.audrey) == []

    with django_capture_on_commit_callbacks(execute=True):
        execution.confirm_cascade(rollback.pk, actor=cast.carl)
    worker()
    assert kinds(cast.carl) == []


def test_a_step_whose_prerequisites_are_unmet_is_a_step_item_until_resolved(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    step = rollback.steps.get()

    assert kinds(cast.carl) == [("step", rollback.pk, step.pk)]
    assert inbox_for(cast.carl, "step")[0].summary.startswith("Step prerequisites unmet: refund.issue on customer:1001")
    assert kinds(cast.vera) == [] and kinds(cast.carl, kind="signoff") == []

    with django_capture_on_commit_callbacks(execute=True):
        execution.resolve_step(rollback.pk, step.pk, actor=cast.carl, note="refunded by hand")
    assert kinds(cast.carl) == []


def test_an_open_remediation_task_is_one_remediation_item_not_also_a_step_item(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [transfer] = chain(cast.shop, "wire.transfer")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [transfer])
    worker()
    task = RemediationTask.objects.get(step__rollback=rollback)

    [item] = inbox_for(cast.carl)[:5]
    assert (item.kind, item.rollback, item.step, item.task) == ("remediation", rollback.pk, task.step_id, task.pk)
    assert item.summary.startswith("Remediation (")
    assert inbox_counts(cast.carl)["remediation"] == 1 and inbox_counts(cast.carl)["step"] == 0
    assert kinds(cast.vera) == []

    with django_capture_on_commit_callbacks(execute=True):
        execution.complete_remediation(task.pk, actor=cast.carl, note="the bank recalled it")
    assert kinds(cast.carl) == []


def test_the_original_approver_of_a_reviewer_error_gets_no_carry_on_item(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    [refund] = chain(cast.shop, "refund.issue")  # approved by alice
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], trigger="reviewer_error")
    worker()
    cast.alice.groups.add(cast.vera.groups.get())  # alice verifies too, but approved the refund
    alice = type(cast.alice).objects.get(pk=cast.alice.pk)

    assert kinds(alice) == []
    assert kinds(cast.victor) == [("step", rollback.pk, rollback.steps.get().pk)]


def test_the_earliest_closing_window_comes_first_then_the_oldest_and_no_window_last(cast):
    later = reviewer_error(cast, executed_at=timezone.now() - timedelta(days=1))
    sooner = reviewer_error(cast, executed_at=timezone.now() - timedelta(days=29))
    oldest_same_window = reviewer_error(cast, executed_at=timezone.now() - timedelta(days=1))
    records = record(cast.shop, "record.update")  # no window
    windowless = services.request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[records.pk]
    )

    order = [rollback for _, rollback, _ in kinds(cast.vera)]
    assert order[0] == sooner.pk and order[-1] == windowless.pk
    assert set(order[1:3]) == {later.pk, oldest_same_window.pk}


def test_the_trigger_filter_keeps_only_that_triggers_items(cast):
    rollback = reviewer_error(cast)
    cast.vera.groups.add(cast.carl.groups.get())
    vera = type(cast.vera).objects.get(pk=cast.vera.pk)
    action = record(cast.shop)
    other = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="customer asks", actions=[action.pk]
    )

    assert {r for _, r, _ in kinds(vera)} == {rollback.pk, other.pk}
    assert kinds(vera, trigger="customer_request") == [("signoff", other.pk, None)]
    assert inbox_for(vera, trigger="customer_request").count() == 1


def test_reading_a_page_costs_the_same_queries_for_three_or_thirty_items(cast):
    for _ in range(3):
        reviewer_error(cast)

    def read() -> int:
        vera = type(cast.vera).objects.get(pk=cast.vera.pk)
        with CaptureQueriesContext(connection) as queries:
            inbox = inbox_for(vera)
            inbox.count()
            inbox[:25]
            inbox_counts(vera)
        return len(queries)

    few = read()
    for _ in range(27):
        reviewer_error(cast)
    assert read() == few


def test_an_empty_inbox_or_an_empty_slice_reads_nothing(cast):
    assert inbox_for(cast.eddie)[0:0] == [] and inbox_for(cast.eddie)[:25] == []
    reviewer_error(cast)
    assert inbox_for(cast.vera)[0:0] == [] and len(inbox_for(cast.vera)[0:25]) == 1


def test_the_people_told_of_an_item_are_exactly_those_whose_inbox_holds_it(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    waiting = reviewer_error(cast)
    [refund, *_] = chain(cast.shop, "refund.issue", "loyalty.points_grant", prefix="p")
    paused = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=0)
    worker()
    paused.refresh_from_db()
    people = [getattr(cast, name) for name in ("alice", "bob", "vera", "victor", "carl", "ines", "lex", "audrey")]

    for rollback, kind in ((waiting, "signoff"), (paused, "confirm_cascade")):
        holders = {p.username for p in people if any(i.rollback == rollback.pk for i in inbox_for(p, kind)[:50])}
        told = {p.username for p in people_for(Item(kind, "", rollback, rollback.created_at))}
        assert told == holders != set()  # the inbox's SQL and the rules the announcements ask agree
    with django_capture_on_commit_callbacks(execute=False):
        services.sign_off(waiting.pk, signer=cast.vera, decision="approve")
    waiting.refresh_from_db()
    assert not any(i.rollback == waiting.pk for i in inbox_for(cast.victor, "signoff")[:50])  # decided
