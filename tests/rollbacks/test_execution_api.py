"""POST confirm-cascade/, steps/{id}/retry/ and steps/{id}/resolve/: who may, in which states, with what input."""

import pytest
from rest_framework.test import APIClient

from rollbacks.models import Rollback, Step
from tests.rollbacks.executing import authorized, chain, shop_fixture, worker_fixture  # noqa: F401
from tests.rollbacks.requesting import assert_audit_event

pytestmark = pytest.mark.django_db


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def confirm_url(rollback: Rollback) -> str:
    return f"/api/v1/rollbacks/{rollback.pk}/confirm-cascade/"


def step_url(rollback: Rollback, step: Step, verb: str) -> str:
    return f"/api/v1/rollbacks/{rollback.pk}/steps/{step.pk}/{verb}/"


@pytest.fixture
def paused(cast, shop, worker, django_capture_on_commit_callbacks) -> Rollback:
    """refund -> points -> tier, authorized to depth 1: paused with the tier awaiting confirmation."""
    [refund, *_] = chain(cast.shop, "refund.issue", "loyalty.points_grant", "tier.upgrade")
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund], depth=1)
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "paused"
    return rollback


@pytest.fixture
def unmet(cast, shop, worker, django_capture_on_commit_callbacks) -> Rollback:
    """A refund whose account is closed: the rollback failed on prerequisites_unmet."""
    [refund] = chain(cast.shop, "refund.issue", prefix="unmet")
    shop.script("refund.chargeback", "check", (200, {"status": "unmet", "unmet": ["account_open"]}))
    rollback = authorized(cast, django_capture_on_commit_callbacks, [refund])
    worker()
    rollback.refresh_from_db()
    assert rollback.state == "failed"
    return rollback


def test_a_signer_confirms_a_paused_cascade_and_gets_the_rollback_back(
    cast, paused, worker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.carl).post(confirm_url(paused), {}, format="json")
    worker()

    assert response.status_code == 200
    assert response.json()["id"] == paused.pk and response.json()["state"] == "executing"
    assert [step["outcome"] for step in response.json()["steps"]] == ["reversed", "reversed", "pending"]
    paused.refresh_from_db()
    assert (paused.state, paused.confirmed_depth) == ("completed", 2)


def test_confirming_to_a_depth_not_deeper_than_confirmed_is_a_400_with_the_field(cast, paused):
    response = client_for(cast.carl).post(confirm_url(paused), {"depth": 1}, format="json")

    assert response.status_code == 400 and "depth" in response.json()


@pytest.mark.parametrize("depth", ["deep", -1, True, [2]])
def test_a_depth_that_is_not_a_whole_number_is_a_400(cast, paused, depth):
    response = client_for(cast.carl).post(confirm_url(paused), {"depth": depth}, format="json")

    assert response.status_code == 400 and "depth" in response.json()


def test_confirming_a_rollback_that_is_not_paused_is_a_409(cast, unmet):
    response = client_for(cast.carl).post(confirm_url(unmet), {}, format="json")

    assert response.status_code == 409


def test_the_requester_cannot_confirm_their_own_cascade_and_the_refusal_is_audited(cast, paused):
    response = client_for(cast.shop).post(confirm_url(paused), {}, format="json")

    assert response.status_code == 403
    assert_audit_event("rollback.refused", actor="shop")
    paused.refresh_from_db()
    assert paused.state == "paused"


def test_an_auditor_sees_the_rollback_but_may_not_confirm_it(cast, paused):
    assert client_for(cast.audrey).get(f"/api/v1/rollbacks/{paused.pk}/").status_code == 200

    assert client_for(cast.audrey).post(confirm_url(paused), {}, format="json").status_code == 403


def test_someone_who_cannot_see_the_rollback_gets_404(cast, paused):
    assert client_for(cast.nobody).post(confirm_url(paused), {}, format="json").status_code == 404
    assert client_for(cast.nobody).post(confirm_url(paused) + "x", {}, format="json").status_code == 404


def test_an_unauthenticated_caller_gets_401(paused):
    assert client_for().post(confirm_url(paused), {}, format="json").status_code == 401


def test_a_signer_retries_a_step_whose_prerequisites_are_now_met(
    cast, unmet, shop, worker, django_capture_on_commit_callbacks
):
    step = unmet.steps.get()
    shop.script("refund.chargeback", "check", (200, {"status": "ok"}))

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.carl).post(step_url(unmet, step, "retry"), format="json")
    worker()

    assert response.status_code == 200
    assert response.json()["state"] == "executing" and response.json()["steps"][0]["outcome"] == "pending"
    unmet.refresh_from_db()
    assert unmet.state == "completed"


def test_retrying_a_step_that_did_not_fail_is_a_409(cast, paused):
    reversed_step = paused.steps.get(depth=0)

    assert client_for(cast.carl).post(step_url(paused, reversed_step, "retry")).status_code == 409


def test_a_step_of_another_rollback_is_404(cast, paused, unmet):
    other_step = unmet.steps.get()

    assert client_for(cast.carl).post(step_url(paused, other_step, "retry")).status_code == 404
    assert client_for(cast.carl).post(step_url(paused, other_step, "resolve"), {"note": "x"}).status_code == 404


def test_a_caller_without_a_signing_role_may_not_retry_or_resolve(cast, unmet):
    step = unmet.steps.get()

    assert client_for(cast.shop).post(step_url(unmet, step, "retry")).status_code == 403
    assert client_for(cast.shop).post(step_url(unmet, step, "resolve"), {"note": "done"}).status_code == 403
    assert client_for(cast.nobody).post(step_url(unmet, step, "retry")).status_code == 404
    assert client_for().post(step_url(unmet, step, "resolve"), {"note": "done"}).status_code == 401


def test_a_signer_resolves_a_step_by_hand_with_a_note(cast, unmet, worker, django_capture_on_commit_callbacks):
    step = unmet.steps.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.carl).post(
            step_url(unmet, step, "resolve"), {"note": "reopened the account and charged back"}, format="json"
        )
    worker()

    assert response.status_code == 200
    [shown] = response.json()["steps"]
    assert shown["outcome"] == "manual_done" and "reopened the account" in shown["detail"]
    assert_audit_event("rollback.step.resolved", actor="carl", rollback_id=unmet.pk)
    unmet.refresh_from_db()
    assert unmet.state == "completed"


@pytest.mark.parametrize("note", [None, "", "   ", ["a list"], "x" * 10_001])
def test_resolving_without_a_note_is_a_400(cast, unmet, note):
    step = unmet.steps.get()
    data = {} if note is None else {"note": note}

    response = client_for(cast.carl).post(step_url(unmet, step, "resolve"), data, format="json")

    assert response.status_code == 400 and "note" in response.json()


def test_resolving_a_step_that_needs_nobody_is_a_409(cast, paused):
    reversed_step = paused.steps.get(depth=0)

    response = client_for(cast.carl).post(step_url(paused, reversed_step, "resolve"), {"note": "x"}, format="json")

    assert response.status_code == 409
