"""A request's page: what a signer needs to decide, the buttons only for those who may press them, and the
same services behind them as behind the API."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.models import AuditEvent
from rollbacks.models import Rollback, RollbackState, SignOff
from rollbacks.services import request_rollback, sign_off

from .conftest import csrf_token, record, run_to_rest, snapshot


def page(client, rollback) -> str:
    response = client.get(reverse("console:rollback", args=[rollback.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.django_db
def test_the_page_shows_the_approval_the_reason_and_the_sign_offs_required(cast, browser_for, reviewer_error):
    html = page(browser_for(cast.vera), reviewer_error)
    assert 'data-testid="approver">alice<' in html
    assert "refund was approved by mistake" in html
    assert "<strong>Verifier</strong>: 0 of 1" in html
    assert "closes in 29 d" in html
    assert "account_open" in html and "charged back" in html  # prerequisites and side effects
    assert 'data-outcome="pending"' in html  # the cascade is drawn
    assert "rollback.requested" in html and "action.recorded" in html  # the audit chain, both ends


@pytest.mark.django_db
def test_a_verifier_sees_approve_and_reject(cast, browser_for, reviewer_error):
    html = page(browser_for(cast.vera), reviewer_error)
    assert 'value="approve">Approve<' in html and 'value="reject">Reject<' in html


@pytest.mark.django_db
def test_the_requester_sees_no_buttons_and_a_forged_approval_is_refused(cast, browser_for, reviewer_error):
    client = browser_for(cast.bob)
    html = page(client, reviewer_error)
    assert 'value="approve"' not in html
    assert "You requested this rollback" in html
    url = reverse("console:rollback-signoff", args=[reviewer_error.pk])
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    response = client.post(url, {"decision": "approve", "csrfmiddlewaretoken": token}, follow=True)
    assert not SignOff.objects.filter(rollback=reviewer_error).exists()
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.PENDING_AUTHORIZATION
    assert b"message-error" in response.content


@pytest.mark.django_db
def test_the_original_approver_may_not_verify_a_reviewer_error(cast, browser_for):
    action = record(cast.shop, approved_by="vera")
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[action.pk])
    html = page(browser_for(cast.vera), rollback)
    assert 'value="approve"' not in html
    assert "You approved the original action" in html
    assert 'value="approve"' in page(browser_for(cast.victor), rollback)


@pytest.mark.django_db
def test_approving_with_a_comment_authorizes_through_sign_off(cast, browser_for, reviewer_error, no_workers):
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    response = client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "approve", "comment": "checked the ticket", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    signoff = SignOff.objects.get(rollback=reviewer_error)
    assert (signoff.signer, signoff.role, signoff.comment) == (cast.vera, "verifier", "checked the ticket")
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.AUTHORIZED
    assert AuditEvent.objects.filter(kind="rollback.signoff", actor="vera", rollback_id=reviewer_error.pk).exists()


@pytest.mark.django_db
def test_rejecting_ends_the_request(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "reject", "comment": "the refund was right", "csrfmiddlewaretoken": token},
    )
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.REJECTED


@pytest.mark.django_db
def test_a_decision_that_is_neither_approve_nor_reject_changes_nothing(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    before = snapshot()
    response = client.post(
        reverse("console:rollback-signoff", args=[reviewer_error.pk]),
        {"decision": "maybe", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 302
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["rollback-signoff", "rollback-confirm", "rollback-cancel"])
def test_posts_without_the_csrf_token_are_refused(cast, browser_for, reviewer_error, name):
    before = snapshot()
    response = browser_for(cast.vera).post(
        reverse(f"console:{name}", args=[reviewer_error.pk]), {"decision": "approve"}
    )
    assert response.status_code == 403
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["rollback-signoff", "rollback-confirm", "rollback-cancel"])
def test_posts_from_someone_who_may_not_see_the_rollback_are_404(cast, browser_for, reviewer_error, name):
    client = browser_for(cast.carl)
    token = csrf_token(client, reverse("console:queue"))
    response = client.post(
        reverse(f"console:{name}", args=[reviewer_error.pk]), {"decision": "approve", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 404


@pytest.mark.django_db
def test_the_requester_may_cancel_before_execution(cast, browser_for, reviewer_error):
    client = browser_for(cast.bob)
    html = page(client, reviewer_error)
    assert "Cancel request" in html
    token = csrf_token(client, reverse("console:rollback", args=[reviewer_error.pk]))
    cancel = reverse("console:rollback-cancel", args=[reviewer_error.pk])
    client.post(cancel, {"csrfmiddlewaretoken": token, "confirm": "yes"})
    assert Rollback.objects.get(pk=reviewer_error.pk).state == RollbackState.CANCELLED


@pytest.mark.django_db
def test_opening_the_page_and_its_progress_changes_nothing(cast, browser_for, reviewer_error):
    before = snapshot()
    client = browser_for(cast.vera)
    page(client, reviewer_error)
    assert client.get(reverse("console:rollback-progress", args=[reviewer_error.pk])).status_code == 200
    assert snapshot() == before


def incident(cast, targets: int) -> Rollback:
    """An incident over `targets` refunds, each with a points grant downstream."""
    ids = []
    for _ in range(targets):
        refund = record(cast.shop)
        record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
        ids.append(refund.pk)
    return request_rollback(requester=cast.ines, trigger="incident", reason="bad batch", actions=ids)


@pytest.mark.django_db
def test_the_page_costs_the_same_queries_for_two_or_forty_steps(cast, browser_for):
    small, large = incident(cast, 1), incident(cast, 20)
    client = browser_for(cast.audrey)
    page(client, small)
    with CaptureQueriesContext(connection) as few:
        page(client, small)
    with CaptureQueriesContext(connection) as many:
        page(client, large)
    assert large.steps.count() == 40
    assert len(many) == len(few)


@pytest.mark.django_db
def test_a_paused_cascade_is_confirmed_from_the_page(
    cast, browser_for, eager_workers, django_capture_on_commit_callbacks
):
    refund = record(cast.shop)
    record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    rollback = request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[refund.pk], max_cascade_depth=0
    )
    with django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=cast.vera, decision="approve")
    rollback = run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    assert rollback.state == RollbackState.PAUSED
    client = browser_for(cast.vera)
    html = page(client, rollback)
    assert "Confirm cascade" in html and 'data-outcome="awaiting_confirmation"' in html
    assert "Confirm cascade" not in page(browser_for(cast.bob), rollback)  # the requester may not
    token = csrf_token(client, reverse("console:rollback", args=[rollback.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("console:rollback-confirm", args=[rollback.pk]), {"csrfmiddlewaretoken": token})
    rollback = run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    assert rollback.state == RollbackState.COMPLETED
    assert 'data-outcome="awaiting_confirmation"' not in page(client, rollback)


@pytest.mark.django_db
def test_the_progress_fragment_asks_for_a_reload_once_the_state_moved_on(cast, browser_for, reviewer_error):
    client = browser_for(cast.vera)
    url = reverse("console:rollback-progress", args=[reviewer_error.pk])
    assert "HX-Refresh" not in client.get(url, {"seen": "pending_authorization"})
    assert client.get(url, {"seen": "executing"})["HX-Refresh"] == "true"


@pytest.fixture
def unmet_refund(cast, eager_workers, django_capture_on_commit_callbacks):
    """A verified reviewer_error whose refund's account is closed: its step ends prerequisites_unmet."""
    from unittest import mock

    refund = record(cast.shop)
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[refund.pk])
    unmet = (200, b'{"status": "unmet", "unmet": ["account_open"]}')
    with mock.patch("policies.methods.webhook.post_signed", return_value=unmet):
        with django_capture_on_commit_callbacks(execute=True):
            sign_off(rollback.pk, signer=cast.vera, decision="approve")
        rollback = run_to_rest(rollback.pk, django_capture_on_commit_callbacks)
    assert rollback.steps.get().outcome == "prerequisites_unmet"
    return rollback


@pytest.mark.django_db
def test_a_signer_retries_a_step_whose_prerequisites_were_unmet(
    cast, browser_for, unmet_refund, django_capture_on_commit_callbacks
):
    step = unmet_refund.steps.get()
    client = browser_for(cast.vera)
    html = page(client, unmet_refund)
    assert f'data-testid="retry-{step.pk}"' in html and f'data-testid="resolve-{step.pk}"' in html
    assert f'data-testid="retry-{step.pk}"' not in page(browser_for(cast.bob), unmet_refund)  # the requester may not
    token = csrf_token(client, reverse("console:rollback", args=[unmet_refund.pk]))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("console:rollback-retry", args=[unmet_refund.pk, step.pk]), {"csrfmiddlewaretoken": token})
    rollback = run_to_rest(unmet_refund.pk, django_capture_on_commit_callbacks)
    assert rollback.steps.get().outcome == "reversed"
    assert AuditEvent.objects.filter(kind="rollback.step.retried", actor="vera").exists()


@pytest.mark.django_db
def test_a_signer_resolves_a_step_by_hand_with_a_note(
    cast, browser_for, unmet_refund, django_capture_on_commit_callbacks
):
    step = unmet_refund.steps.get()
    client = browser_for(cast.vera)
    token = csrf_token(client, reverse("console:rollback", args=[unmet_refund.pk]))
    url = reverse("console:rollback-resolve", args=[unmet_refund.pk, step.pk])
    response = client.post(url, {"note": "", "csrfmiddlewaretoken": token}, follow=True)
    assert b"Say what was done by hand." in response.content
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"note": "charged back at the bank", "csrfmiddlewaretoken": token})
    step.refresh_from_db()
    assert step.outcome == "manual_done" and "charged back at the bank" in step.detail


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["rollback-retry", "rollback-resolve"])
def test_step_posts_without_the_csrf_token_are_refused(cast, browser_for, unmet_refund, name):
    step = unmet_refund.steps.get()
    before = snapshot()
    response = browser_for(cast.vera).post(reverse(f"console:{name}", args=[unmet_refund.pk, step.pk]), {"note": "x"})
    assert response.status_code == 403
    assert snapshot() == before
