"""One owner per rule (rollbacks.rules): the console offers a button to exactly the people the service accepts,
because both ask the same function, and each refusal reads the same wherever it is shown."""

from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse

from rollback_console.errors import Conflict, DomainError, Forbidden
from rollbacks import rules, services
from rollbacks.models import Rollback, RollbackState
from rollbacks.rules import Refusal
from tests.conftest import CAST
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


class _Undo(Exception):
    """Raised to roll back what a service did once we know it accepted the call."""


def accepted(call: Any) -> bool:
    """Whether the service accepts the call, leaving the database as it was either way."""
    try:
        with transaction.atomic():
            call()
            raise _Undo
    except _Undo:
        return True
    except DomainError:
        return False


def page(user: Any, rollback: Rollback) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("console:rollback", args=[rollback.pk]))
    assert response.status_code in (200, 403, 404)
    return response.content.decode() if response.status_code == 200 else ""


def filed(cast: Any) -> Rollback:
    """bob flags vera's approval of a refund as a reviewer error: vera may not verify it, victor may."""
    action = record(cast.shop, "refund.issue", approved_by="vera", external_id="rules-refund")
    return services.request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[action.pk])


def test_the_page_offers_sign_off_to_exactly_the_people_the_service_accepts(cast):
    rollback = filed(cast)
    offered, signers = set(), set()
    for name in CAST:
        user = getattr(cast, name)
        if 'value="approve"' in page(user, rollback):
            offered.add(name)
        if accepted(lambda user=user: services.sign_off(rollback.pk, signer=user, decision="approve")):
            signers.add(name)
    assert signers == {"victor"}
    assert offered == signers


def test_the_page_offers_cancel_to_exactly_the_people_the_service_accepts(cast):
    rollback = filed(cast)
    offered, cancellers = set(), set()
    for name in CAST:
        user = getattr(cast, name)
        if reverse("console:rollback-cancel", args=[rollback.pk]) in page(user, rollback):
            offered.add(name)
        if accepted(lambda user=user: services.cancel_rollback(rollback.pk, actor=user)):
            cancellers.add(name)
    assert {"bob", "vera", "victor"} <= cancellers
    assert offered == cancellers


def test_the_approver_reads_the_same_refusal_on_the_page_and_from_the_service(cast):
    rollback = filed(cast)
    with pytest.raises(Forbidden) as refused:
        services.sign_off(rollback.pk, signer=cast.vera, decision="approve")
    assert refused.value.message in page(cast.vera, rollback).replace("&#x27;", "'")


def test_a_refusal_about_the_state_is_a_conflict_and_one_about_the_person_is_forbidden():
    assert isinstance(Refusal("not now", 409, "state").error(), Conflict)
    assert isinstance(Refusal("not you", 403, "person").error(), Forbidden)


def test_a_decided_rollback_refuses_sign_off_by_its_state_before_asking_who(cast):
    rollback = filed(cast)
    rollback.state = RollbackState.AUTHORIZED
    answer = rules.signing_role(cast.bob, rollback, signed=True, approvals={}, approved_error=True)
    assert isinstance(answer, Refusal) and answer.about == "state" and answer.status == 409


def test_the_roles_that_sign_under_the_policy_include_the_expired_window_extras(cast, policy):
    roles = rules.policy_signing_roles(policy)
    assert {"verifier", "executive"} <= roles
    assert "integrator" not in roles and "auditor" not in roles


@pytest.mark.parametrize(
    ("name", "oversees"),
    [("audrey", True), ("vera", True), ("eddie", True), ("shop", False), ("nobody", False)],
)
def test_auditors_and_signers_oversee_rollbacks_and_nobody_else(cast, name, oversees):
    assert rules.oversees_rollbacks(getattr(cast, name)) is oversees
