"""A `reviewer_error` rollback undoes someone's approval: that approver may not verify it (test_sign_off), nor
confirm its cascade, retry or resolve its steps, through the API or the console, which ask the same service."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rollback_console.errors import Forbidden
from rollbacks import execution, services
from rollbacks.models import RemediationTask, Rollback
from tests.rollbacks.executing import shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import assert_audit_event, colleague, events, record

pytestmark = pytest.mark.django_db

APPROVER_REFUSED = "approved an action this reviewer_error rollback reverses"


def api(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


def console(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def verified(cast, capture, *, prefix: str, depth: int | None = None) -> Rollback:  # type: ignore[no-untyped-def]
    """victor (a verifier) approved the refund; bob flags it as a reviewer error and vera verifies it."""
    refund = record(cast.shop, "refund.issue", approved_by="victor", external_id=f"{prefix}-refund")
    record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,), external_id=f"{prefix}-points")
    rollback = services.request_rollback(
        requester=cast.bob,
        trigger="reviewer_error",
        reason="victor approved it by mistake",
        actions=[refund.pk],
        max_cascade_depth=depth,
    )
    with capture(execute=True):
        services.sign_off(rollback.pk, signer=cast.vera, decision="approve")
    return rollback


@pytest.fixture
def paused(cast, shop, worker, django_capture_on_commit_callbacks) -> Rollback:
    rollback = verified(cast, django_capture_on_commit_callbacks, prefix="paused", depth=0)
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "paused"
    return rollback


@pytest.fixture
def unmet(cast, shop, worker, django_capture_on_commit_callbacks) -> Rollback:
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = verified(cast, django_capture_on_commit_callbacks, prefix="unmet", depth=0)
    worker()
    rollback.refresh_from_db()
    assert rollback.steps.get(depth=0).outcome == "prerequisites_unmet"
    return rollback


def assert_refused_and_unchanged(rollback: Rollback, operation: str) -> None:
    before = (rollback.state, list(rollback.steps.order_by("pk").values_list("outcome", flat=True)))
    rollback.refresh_from_db()
    assert (rollback.state, list(rollback.steps.order_by("pk").values_list("outcome", flat=True))) == before
    refusal = assert_audit_event("rollback.refused", actor="victor")
    assert f'"operation":"{operation}"' in refusal.data.replace(" ", "")
    assert APPROVER_REFUSED in refusal.data


def test_the_approver_may_not_confirm_the_cascade_through_the_api(cast, paused):
    response = api(cast.victor).post(f"/api/v1/rollbacks/{paused.pk}/confirm-cascade/", {}, format="json")

    assert response.status_code == 403
    assert_refused_and_unchanged(paused, "confirm_cascade")


def test_the_approver_may_not_retry_a_step_through_the_api(cast, unmet):
    step = unmet.steps.get(depth=0)

    response = api(cast.victor).post(f"/api/v1/rollbacks/{unmet.pk}/steps/{step.pk}/retry/", format="json")

    assert response.status_code == 403
    assert_refused_and_unchanged(unmet, "retry_step")


def test_the_approver_may_not_resolve_a_step_through_the_api(cast, unmet):
    step = unmet.steps.get(depth=0)

    response = api(cast.victor).post(
        f"/api/v1/rollbacks/{unmet.pk}/steps/{step.pk}/resolve/", {"note": "I fixed it myself"}, format="json"
    )

    assert response.status_code == 403
    assert_refused_and_unchanged(unmet, "resolve_step")


@pytest.mark.parametrize(
    ("fixture", "operation", "url_name"),
    [
        ("paused", "confirm_cascade", "console:rollback-confirm"),
        ("unmet", "retry_step", "console:rollback-retry"),
        ("unmet", "resolve_step", "console:rollback-resolve"),
    ],
)
def test_the_approver_is_refused_the_same_in_the_console(cast, request, fixture, operation, url_name):
    rollback = request.getfixturevalue(fixture)
    args = [rollback.pk] if operation == "confirm_cascade" else [rollback.pk, rollback.steps.get(depth=0).pk]

    response = console(cast.victor).post(reverse(url_name, args=args), {"note": "done by me"}, follow=True)

    assert response.status_code == 200
    assert "someone else must carry it on" in response.content.decode()
    assert_refused_and_unchanged(rollback, operation)


def test_the_approver_may_not_close_its_remediation_task_either(cast, shop, worker, django_capture_on_commit_callbacks):
    wire = record(cast.shop, "wire.transfer", approved_by="victor", external_id="manual-wire")
    rollback = services.request_rollback(
        requester=cast.bob, trigger="reviewer_error", reason="victor approved it by mistake", actions=[wire.pk]
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_off(rollback.pk, signer=cast.vera, decision="approve")
    worker()
    task = RemediationTask.objects.get(step__rollback=rollback)

    with pytest.raises(Forbidden):
        execution.complete_remediation(task.pk, actor=cast.victor, note="called them")

    task.refresh_from_db()
    assert task.done_at is None
    assert_audit_event("rollback.refused", actor="victor")


def test_another_verifier_carries_the_same_rollback_on(cast, paused, worker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(cast.vera).post(f"/api/v1/rollbacks/{paused.pk}/confirm-cascade/", {}, format="json")
    worker()

    assert response.status_code == 200
    paused.refresh_from_db()
    assert paused.state == "completed"
    assert not events("rollback.refused", actor="vera")


def test_the_approver_of_a_customer_request_rollback_is_not_held_back(
    cast, shop, worker, django_capture_on_commit_callbacks
):
    """The rule is about reviewer errors: an approver who holds a signing role elsewhere carries on as before."""
    refund = record(cast.shop, "refund.issue", approved_by="carl", external_id="cs-refund")
    record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,), external_id="cs-points")
    rollback = services.request_rollback(
        requester=cast.shop, trigger="customer_request", reason="disputed", actions=[refund.pk], max_cascade_depth=0
    )
    second = colleague("cindy", "customer_service")
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_off(rollback.pk, signer=second, decision="approve")
    worker()

    response = api(cast.carl).post(f"/api/v1/rollbacks/{rollback.pk}/confirm-cascade/", {}, format="json")

    assert response.status_code == 200
