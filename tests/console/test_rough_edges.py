"""The console's rough edges, fixed (issue 10, part 4): no link to a rollback its reader may not open, the
console's own 404 with DEBUG on, the progress bar's arithmetic, labels instead of identifiers, the trail a page at a
time with its events' data and a verified mark, cancelling asked twice, the admin's "View site", the plan saying how
many actions were already reversed, and a step and its remediation task naming each other."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from audit.verification import verify_and_checkpoint
from console.drawing import GraphNode, cascade_levels, fits
from console.views.rollbacks import AUDIT_ROWS
from rollbacks.models import RemediationTask, Rollback, RollbackState
from rollbacks.selectors import StepProgress
from rollbacks.services import plan_rollback, request_rollback, sign_off

from .conftest import csrf_token, record, run_to_rest

pytestmark = pytest.mark.django_db


def test_an_action_page_links_only_the_rollbacks_its_reader_may_open(cast, browser_for):
    refund = record(cast.shop)
    incident = request_rollback(requester=cast.ines, trigger="incident", reason="agent run", actions=[refund.pk])
    url = reverse("console:action", args=[refund.pk])
    link = f'href="{reverse("console:rollback", args=[incident.pk])}"'

    carls = browser_for(cast.carl).get(url).content.decode()  # sees the refund, not the incident
    ines = browser_for(cast.ines).get(url).content.decode()

    assert f'data-rollback="{incident.pk}"' in carls and "not yours to open" in carls
    assert link not in carls
    assert link in ines and "not yours to open" not in ines


@pytest.mark.parametrize("debug", [False, True])
def test_a_rollback_nobody_may_show_is_the_consoles_own_not_found_page_with_debug_on_or_off(
    debug, cast, browser_for, reviewer_error, settings
):
    settings.DEBUG = debug
    client = browser_for(cast.carl)

    for url in (reverse("console:rollback", args=[reviewer_error.pk]), "/console/no-such-page/"):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 404
        assert "There is nothing here, or nothing you may see." in html and "console/console.css" in html
        assert "DEBUG = True" not in html and "URLconf" not in html
    api = client.get("/api/v1/no-such-endpoint/")
    assert api.status_code == 404 and api["Content-Type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True])
def test_a_forbidden_page_is_the_consoles_own_with_debug_on_or_off(debug, cast, browser_for, settings):
    settings.DEBUG = debug
    response = browser_for(cast.nobody).get(reverse("console:queue"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "You hold no role in Rollback Console" in html and "console/console.css" in html


@pytest.mark.parametrize(
    ("total", "finished", "needs_person", "percent", "stuck"),
    [(1, 0, 1, 0, 100), (1, 0, 0, 0, 0), (1, 1, 0, 100, 0), (100, 99, 0, 99, 0), (2, 1, 1, 50, 50), (3, 2, 1, 66, 34)],
)
def test_the_progress_bar_counts_only_done_steps_as_done(total, finished, needs_person, percent, stuck):
    others = {"pending": total - finished - needs_person}
    progress = StepProgress({"reversed": finished, "failed": needs_person, **others})
    assert (progress.percent, progress.needs_person_percent) == (percent, stuck)


def test_a_rollback_without_steps_shows_no_progress():
    assert StepProgress({}).percent == 0


def test_a_step_waiting_for_a_person_is_not_drawn_as_done(cast, browser_for, task):
    rollback = task.step.rollback
    html = browser_for(cast.ines).get(reverse("console:rollback", args=[rollback.pk])).content.decode()
    assert "<strong>0</strong> of 1 done (0 %)" in html
    assert 'aria-valuenow="0"' in html and 'class="stuck" style="width: 100%"' in html


def test_the_request_page_shows_labels_not_identifiers(cast, browser_for):
    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="r", actions=[refund.pk])
    html = browser_for(cast.carl).get(reverse("console:rollback", args=[rollback.pk])).content.decode()
    assert "<strong>Customer service</strong>: 0 of 1" in html
    assert "<dd>Customer request</dd>" in html
    assert "customer_service<" not in html and "customer_request<" not in html
    assert '<span class="chip">Customer service</span>' in html  # the header's roles too


def _many_events(rollback: Rollback, count: int) -> None:
    from audit.services import record_event

    for index in range(count):
        record_event("rollback.noted", actor="test", rollback_id=rollback.pk, data={"index": index})


def test_the_trail_shows_a_page_of_the_newest_events_and_links_to_older_ones(cast, browser_for, reviewer_error):
    _many_events(reviewer_error, 2 * AUDIT_ROWS)
    client = browser_for(cast.vera)
    url = reverse("console:rollback", args=[reviewer_error.pk])

    first = client.get(url)
    events = first.context["events"]
    assert len(events) == AUDIT_ROWS
    newest = AuditEvent.objects.filter(rollback_id=reviewer_error.pk).order_by("-seq").first()
    assert events[0].seq == newest.seq and events == sorted(events, key=lambda e: -e.seq)
    older = first.context["trail"].older
    assert f"?before={older}#trail" in first.content.decode()

    second = client.get(url, {"before": older})
    assert second.status_code == 200
    assert all(event.seq < older for event in second.context["events"])
    assert len(second.context["events"]) == AUDIT_ROWS


def test_a_trail_row_opens_to_the_event_data(cast, browser_for, reviewer_error):
    html = browser_for(cast.vera).get(reverse("console:rollback", args=[reviewer_error.pk])).content.decode()
    requested = AuditEvent.objects.get(kind="rollback.requested", rollback_id=reviewer_error.pk)
    assert f'data-testid="event-data-{requested.seq}"' in html
    assert "&quot;trigger&quot;: &quot;reviewer_error&quot;" in html  # the data, indented, inside <details>


def test_a_bad_trail_cursor_is_a_clear_error_not_a_500(cast, browser_for, reviewer_error):
    url = reverse("console:rollback", args=[reviewer_error.pk])
    for before in ("abc", "0", str(2**70)):
        response = browser_for(cast.vera).get(url, {"before": before})
        assert response.status_code == 400
        assert "Before:" in response.content.decode()


def test_the_trail_says_it_verifies_up_to_the_last_checkpoint(cast, browser_for, reviewer_error, settings, tmp_path):
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "anchors.jsonl")
    settings.AUDIT_ANCHOR_URL = ""
    client = browser_for(cast.vera)
    url = reverse("console:rollback", args=[reviewer_error.pk])

    before = client.get(url).content.decode()
    assert "not yet verified" in before

    assert verify_and_checkpoint().ok
    _many_events(reviewer_error, 1)  # after the checkpoint
    response = client.get(url)
    html = response.content.decode()
    standing = response.context["standing"]
    assert standing.holds and "✓ verified" in html and "not yet checkpointed" in html
    newest, *rest = response.context["events"]
    assert not standing.verified(newest.seq) and all(standing.verified(event.seq) for event in rest)


def test_the_trail_costs_the_same_queries_with_twenty_or_two_hundred_events(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    url = reverse("console:rollback", args=[reviewer_error.pk])
    _many_events(reviewer_error, AUDIT_ROWS)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    _many_events(reviewer_error, 10 * AUDIT_ROWS)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_cancelling_asks_first_and_only_the_confirmation_cancels(cast, browser_for, reviewer_error):
    client = browser_for(cast.bob)
    page_url = reverse("console:rollback", args=[reviewer_error.pk])
    cancel = reverse("console:rollback-cancel", args=[reviewer_error.pk])
    assert f'href="{cancel}"' in client.get(page_url).content.decode()

    question = client.get(cancel)
    assert question.status_code == 200 and 'name="confirm" value="yes"' in question.content.decode()
    token = csrf_token(client, page_url)
    again = client.post(cancel, {"csrfmiddlewaretoken": token})  # a POST that skipped the question
    assert again.status_code == 200 and "Yes, cancel the request" in again.content.decode()
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.PENDING_AUTHORIZATION

    client.post(cancel, {"csrfmiddlewaretoken": token, "confirm": "yes"})
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.CANCELLED


def test_the_cancel_question_is_not_asked_of_someone_who_may_not_cancel(cast, browser_for, reviewer_error):
    cancel = reverse("console:rollback-cancel", args=[reviewer_error.pk])
    response = browser_for(cast.audrey).get(cancel)  # sees it, may not cancel it
    assert response.status_code == 302 and response["Location"] == reverse("console:rollback", args=[reviewer_error.pk])
    assert browser_for(cast.carl).get(cancel).status_code == 404  # may not see it
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.PENDING_AUTHORIZATION


def test_view_site_takes_an_administrator_without_a_role_somewhere_useful(cast, browser_for):
    from django.contrib import admin

    admin_user = User.objects.create_superuser("root-admin", "root@example.com", "x")
    assert admin.site.site_url == reverse("console:start")

    response = browser_for(admin_user).get(reverse("console:start"))
    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("admin:index") in html and reverse("admin:auth_user_change", args=[admin_user.pk]) in html


def test_view_site_takes_people_with_a_role_or_none_to_the_queue(cast, browser_for):
    assert browser_for(cast.vera).get(reverse("console:start"))["Location"] == reverse("console:queue")
    assert browser_for(cast.nobody).get(reverse("console:start"))["Location"] == reverse("console:queue")
    anonymous = browser_for(None).get(reverse("console:start"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_the_plan_says_how_many_planned_actions_were_already_reversed(
    cast, eager_workers, browser_for, django_capture_on_commit_callbacks
):
    done, fresh = record(cast.shop, "loyalty.points_grant"), record(cast.shop, "loyalty.points_grant")
    first = request_rollback(requester=cast.ines, trigger="incident", reason="once", actions=[done.pk])
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(first.pk, signer=_second_commander(), decision="approve")
    run_to_rest(first.pk, django_capture_on_commit_callbacks)
    done.refresh_from_db()
    assert done.state == "reversed"

    plan = plan_rollback(
        requester=cast.ines, trigger="incident", reason="again", selector={"action_type": "loyalty.points_grant"}
    )
    assert plan.counts["actions"] == 2 and plan.counts["already_reversed"] == 1
    assert fresh.pk in plan.counts["action_ids"]

    client = browser_for(cast.ines)
    token = csrf_token(client, reverse("console:bulk"))
    html = client.post(
        reverse("console:bulk"),
        {
            "csrfmiddlewaretoken": token,
            "intent": "preview",
            "trigger": "incident",
            "reason": "again",
            "action_type": "loyalty.points_grant",
        },
    ).content.decode()
    assert 'data-testid="already-reversed-note"' in html
    assert "1 of the 2 planned actions was already reversed" in html


def _second_commander():  # type: ignore[no-untyped-def]
    from .conftest import incident_commander

    return incident_commander("ivan")


def test_a_step_and_its_remediation_task_name_each_other(cast, browser_for, task, ivan):
    rollback_id, step_id = task.step.rollback_id, task.step_id
    rollback_html = browser_for(cast.ines).get(reverse("console:rollback", args=[rollback_id])).content.decode()
    assert f'data-testid="step-task-{step_id}"' in rollback_html
    assert f"#task-{task.pk}" in rollback_html and "marking the task done resolves this step" in rollback_html

    listed = browser_for(ivan).get(reverse("console:remediation")).content.decode()  # ivan may mark it done
    assert f'href="{reverse("console:rollback", args=[rollback_id])}#step-{step_id}"' in listed
    assert f"Marking it done also resolves step {step_id}." in listed


def test_marking_a_task_done_says_its_step_was_resolved_with_it(cast, browser_for, task, ivan):
    client = browser_for(ivan)
    token = csrf_token(client, reverse("console:remediation"))
    response = client.post(
        reverse("console:remediation-done", args=[task.pk]),
        {"csrfmiddlewaretoken": token, "note": "wired back"},
        follow=True,
    )
    assert "Its step was resolved with it." in response.content.decode()
    assert RemediationTask.objects.get(pk=task.pk).step.outcome == "manual_done"


def _chain_nodes(depths: int) -> list[GraphNode]:
    return [
        GraphNode(key=d, parent=d - 1 if d else None, depth=d, title="t", subtitle="s", outcome="reversed")
        for d in range(depths)
    ]


def test_a_cascade_of_five_levels_fits_and_a_deeper_one_says_it_scrolls():
    assert fits(cascade_levels(_chain_nodes(5)))
    assert not fits(cascade_levels(_chain_nodes(6)))


def test_the_cascade_lists_every_level_as_text_with_its_loops(cast, browser_for, task):
    nodes = [
        *_chain_nodes(3),
        GraphNode(key=9, parent=2, depth=3, title="t", subtitle="s", outcome="loop_stopped", dashed=True),
    ]
    [*_, deepest] = cascade_levels(nodes)
    assert (deepest.depth, deepest.steps, deepest.outcomes, deepest.loops) == (3, 1, [("loop_stopped", 1)], 1)


def test_an_event_that_no_longer_hashes_to_its_stored_hash_is_shown_as_altered(reviewer_error):
    from audit.verification import standing_of

    event = AuditEvent.objects.filter(rollback_id=reviewer_error.pk).order_by("-seq").first()
    assert standing_of([event]).holds
    event.data = event.data.replace("reviewer_error", "incident")  # in memory only: the table refuses UPDATE
    standing = standing_of([event])
    assert not standing.holds and event.seq in standing.altered and not standing.verified(event.seq)
