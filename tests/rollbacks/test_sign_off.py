from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from actions.models import Action, ActionState
from rollback_console.errors import Conflict, Forbidden, Invalid
from rollbacks.models import Rollback, SignOff
from rollbacks.services import request_rollback, sign_off
from tests.rollbacks.requesting import assert_audit_event, capturing_queue, colleague, events, record

pytestmark = pytest.mark.django_db

# Who files each trigger and who completes it, from the demo policy.
WHOLE_AUTHORIZATIONS = {
    "reviewer_error": ("bob", ["vera"]),
    "customer_request": ("carl", ["shop_signer"]),
    "incident": ("ines", ["ines_2"]),
    "policy_reversal": ("paula", ["paula_2", "lena"]),
    "regulatory_order": ("lena", ["lena_2", "eddie"]),
}


@pytest.fixture
def colleagues(cast):
    """A second holder of some roles, so a requester's own role can still be signed by someone else."""
    pairs = [
        ("shop_signer", "customer_service"),
        ("ines_2", "incident_commander"),
        ("paula_2", "policy_owner"),
        ("lena_2", "legal"),
    ]
    return {username: colleague(username, role) for username, role in pairs}


def person(cast, colleagues, username):
    return colleagues.get(username) or getattr(cast, username)


def file(cast, trigger, requester, **kwargs):
    action = kwargs.pop("action", None) or record(cast.shop)
    return request_rollback(
        requester=requester, trigger=trigger, reason="because", actions=[action.pk], reference="ORD-1", **kwargs
    )


@pytest.mark.parametrize("trigger", list(WHOLE_AUTHORIZATIONS))
def test_each_trigger_goes_through_its_whole_authorization(
    cast, colleagues, trigger, django_capture_on_commit_callbacks
):
    requester_name, signer_names = WHOLE_AUTHORIZATIONS[trigger]
    rollback = file(cast, trigger, person(cast, colleagues, requester_name))

    with capturing_queue() as queued, django_capture_on_commit_callbacks(execute=True):
        for index, name in enumerate(signer_names):
            rollback = sign_off(rollback.pk, signer=person(cast, colleagues, name), decision="approve", comment="ok")
            expected = "authorized" if index == len(signer_names) - 1 else "pending_authorization"
            assert rollback.state == expected

    assert queued == [rollback.pk]
    assert rollback.authorized_at is not None
    roles = list(SignOff.objects.filter(rollback=rollback).values_list("role", flat=True))
    assert roles == [item["role"] for item in rollback.required_signoffs]
    assert_audit_event("rollback.authorized", rollback_id=rollback.pk, actor=signer_names[-1])


def test_the_approval_that_is_not_the_last_queues_nothing(cast, django_capture_on_commit_callbacks):
    rollback = file(cast, "policy_reversal", cast.paula)

    with capturing_queue() as queued, django_capture_on_commit_callbacks(execute=True):
        sign_off(rollback.pk, signer=cast.lena, decision="approve")

    assert queued == []


def test_a_rejection_ends_the_request_and_puts_the_actions_back(cast):
    refund = record(cast.shop)
    rollback = file(cast, "customer_request", cast.shop, action=refund)

    rollback = sign_off(rollback.pk, signer=cast.carl, decision="reject", comment="customer changed their mind")

    assert rollback.state == "rejected" and rollback.finished_at is not None
    assert Action.objects.get(pk=refund.pk).state == ActionState.EXECUTED
    assert_audit_event("rollback.rejected", rollback_id=rollback.pk, actor="carl")


def test_a_rejected_request_takes_no_more_signoffs(cast):
    rollback = file(cast, "policy_reversal", cast.paula)
    sign_off(rollback.pk, signer=cast.lena, decision="reject")

    with pytest.raises(Conflict):
        sign_off(rollback.pk, signer=cast.lex, decision="approve")


def test_an_authorized_request_takes_no_more_signoffs_and_the_refusal_is_audited(cast):
    rollback = file(cast, "customer_request", cast.shop)
    sign_off(rollback.pk, signer=cast.carl, decision="approve")

    with pytest.raises(Conflict):
        sign_off(rollback.pk, signer=cast.carl, decision="approve")

    assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="carl")


# Separation of duties: each refusal is refused AND in the trail.


def test_a_requester_cannot_sign_off_their_own_request(cast):
    rollback = file(cast, "regulatory_order", cast.lena)

    with pytest.raises(Forbidden, match="requested"):
        sign_off(rollback.pk, signer=cast.lena, decision="approve")

    event = assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="lena")
    assert "requested" in orjson.loads(event.data)["reason"]
    assert not SignOff.objects.exists()


def test_a_person_with_two_roles_counts_once(cast):
    rollback = file(cast, "regulatory_order", cast.lena)
    rollback = sign_off(rollback.pk, signer=cast.lex, decision="approve")
    assert rollback.state == "pending_authorization"
    assert SignOff.objects.get(rollback=rollback).role == "legal"  # the first missing role in the manifest's order

    with pytest.raises(Conflict, match="one person counts once"):
        sign_off(rollback.pk, signer=cast.lex, decision="approve")

    event = assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="lex")
    assert "one person counts once" in orjson.loads(event.data)["reason"]
    assert Rollback.objects.get(pk=rollback.pk).state == "pending_authorization"


def test_a_person_with_two_roles_fills_the_first_role_still_missing(cast):
    rollback = file(cast, "regulatory_order", cast.lena)
    sign_off(rollback.pk, signer=cast.eddie, decision="approve")

    rollback = sign_off(rollback.pk, signer=cast.lex, decision="approve")

    assert dict(SignOff.objects.filter(rollback=rollback).values_list("signer__username", "role")) == {
        "eddie": "executive",
        "lex": "legal",
    }
    assert rollback.state == "authorized"


def test_the_original_approver_cannot_verify_a_reviewer_error(cast):
    action = record(cast.shop, approved_by="vera")
    rollback = file(cast, "reviewer_error", cast.bob, action=action)

    with pytest.raises(Forbidden, match="approved"):
        sign_off(rollback.pk, signer=cast.vera, decision="approve")

    event = assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="vera")
    assert "approved" in orjson.loads(event.data)["reason"]
    assert sign_off(rollback.pk, signer=cast.victor, decision="approve").state == "authorized"


def test_any_reviewer_may_flag_an_approval_as_an_error_and_a_verifier_confirms_it(cast):
    action = record(cast.shop, approved_by="alice")
    rollback = file(cast, "reviewer_error", cast.bob, action=action)

    assert sign_off(rollback.pk, signer=cast.vera, decision="approve").state == "authorized"


def test_a_signer_whose_roles_are_all_signed_gets_a_conflict(cast):
    rollback = file(cast, "policy_reversal", cast.paula)
    sign_off(rollback.pk, signer=cast.lena, decision="approve")

    with pytest.raises(Conflict, match="has signed"):
        sign_off(rollback.pk, signer=cast.lex, decision="approve")  # legal is filled; lex's executive is not asked

    assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor="lex")


@pytest.mark.parametrize("username", ["alice", "vera", "eddie", "audrey", "shop", "nobody"])
def test_a_signer_holding_no_signing_role_is_forbidden_and_audited(cast, username):
    rollback = file(cast, "policy_reversal", cast.paula)

    with pytest.raises(Forbidden, match="sign off this rollback"):
        sign_off(rollback.pk, signer=getattr(cast, username), decision="approve")

    assert_audit_event("rollback.signoff_refused", rollback_id=rollback.pk, actor=username)


def test_an_expired_window_demands_the_executive(cast):
    old = record(cast.shop, executed_at=timezone.now() - timedelta(days=45))
    rollback = file(cast, "customer_request", cast.shop, action=old)

    rollback = sign_off(rollback.pk, signer=cast.carl, decision="approve")
    assert rollback.state == "pending_authorization"

    assert sign_off(rollback.pk, signer=cast.eddie, decision="approve").state == "authorized"


def test_an_open_window_does_not_ask_the_executive(cast):
    recent = record(cast.shop, executed_at=timezone.now() - timedelta(days=2))
    rollback = file(cast, "customer_request", cast.shop, action=recent)

    with pytest.raises(Forbidden):
        sign_off(rollback.pk, signer=cast.eddie, decision="approve")
    assert sign_off(rollback.pk, signer=cast.carl, decision="approve").state == "authorized"


def test_an_expired_window_measured_by_a_controlled_clock(cast, monkeypatch):
    action = record(cast.shop, executed_at=timezone.now() - timedelta(days=1))
    later = timezone.now() + timedelta(days=30)
    monkeypatch.setattr(timezone, "now", lambda: later)

    rollback = file(cast, "customer_request", cast.shop, action=action)

    assert [item["role"] for item in rollback.required_signoffs] == ["customer_service", "executive"]


@pytest.mark.parametrize("decision", ["maybe", "", None, 1, "APPROVE"])
def test_a_decision_other_than_approve_or_reject_is_invalid(cast, decision):
    rollback = file(cast, "customer_request", cast.shop)

    with pytest.raises(Invalid) as refused:
        sign_off(rollback.pk, signer=cast.carl, decision=decision)

    assert "decision" in refused.value.errors


def test_the_signoff_is_audited_with_its_role_and_comment(cast):
    rollback = file(cast, "policy_reversal", cast.paula)

    sign_off(rollback.pk, signer=cast.lena, decision="approve", comment="legal ok")

    data = orjson.loads(assert_audit_event("rollback.signoff", rollback_id=rollback.pk, actor="lena").data)
    assert data == {"role": "legal", "decision": "approve", "comment": "legal ok"}
    assert len(events("rollback.authorized", rollback_id=rollback.pk)) == 0
