"""Batch decisions (rollbacks.services.sign_off_many): one decision and one comment over several requests of one
trigger, each signed on its own by sign_off, so a refusal of one leaves the others signed and says why."""

import pytest

from rollback_console.errors import Invalid
from rollbacks.models import Rollback, RollbackState, SignOff
from rollbacks.services import MAX_BATCH, request_rollback, sign_off, sign_off_many
from tests.rollbacks.requesting import assert_audit_event, capturing_queue, colleague, events, record

pytestmark = pytest.mark.django_db


def reviewer_errors(cast, count, requester=None):
    """`count` reviewer_error requests over alice's refunds, filed by bob (or `requester`)."""
    return [
        request_rollback(
            requester=requester or cast.bob,
            trigger="reviewer_error",
            reason=f"wrong refund {index}",
            actions=[record(cast.shop).pk],
        )
        for index in range(count)
    ]


def test_a_verifier_approves_three_requests_at_once_each_signed_and_audited_on_its_own(
    cast, django_capture_on_commit_callbacks
):
    filed = reviewer_errors(cast, 3)
    with capturing_queue() as queued, django_capture_on_commit_callbacks(execute=True):
        outcomes = sign_off_many([r.pk for r in filed], signer=cast.vera, decision="approve", comment="all checked")

    assert [o.rollback.pk for o in outcomes] == [r.pk for r in filed]
    assert all(o.signed and o.refusal is None for o in outcomes)
    assert {o.rollback.state for o in outcomes} == {RollbackState.AUTHORIZED}
    assert sorted(queued) == sorted(r.pk for r in filed)  # each queued once, after its own commit
    for rollback in filed:
        event = assert_audit_event("rollback.signoff", rollback_id=rollback.pk, actor="vera")
        assert '"comment":"all checked"' in event.data
        assert_audit_event("rollback.authorized", rollback_id=rollback.pk)


def test_one_refused_request_leaves_the_others_signed_and_says_why(cast):
    rita = colleague("rita", "reviewer", "verifier")  # files reviewer errors and verifies them
    mine = request_rollback(
        requester=rita, trigger="reviewer_error", reason="rita files one", actions=[record(cast.shop).pk]
    )
    others = reviewer_errors(cast, 2)
    ids = [others[0].pk, mine.pk, others[1].pk]

    outcomes = sign_off_many(ids, signer=rita, decision="approve", comment="checked")

    assert [o.signed for o in outcomes] == [True, False, True]
    refused = outcomes[1]
    assert refused.rollback.pk == mine.pk
    assert refused.refusal is not None
    assert refused.refusal.message == "You requested this rollback: nobody signs off a rollback they requested."
    assert refused.refusal.status == 403
    assert refused.rollback.state == RollbackState.PENDING_AUTHORIZATION
    assert_audit_event("rollback.signoff_refused", rollback_id=mine.pk, actor="rita")
    assert not SignOff.objects.filter(rollback=mine).exists()


def test_a_request_a_colleague_signed_meanwhile_is_reported_as_refused(cast):
    first, second = reviewer_errors(cast, 2)
    sign_off(first.pk, signer=cast.victor, decision="approve")  # victor was quicker

    outcomes = sign_off_many([first.pk, second.pk], signer=cast.vera, decision="approve")

    assert [o.signed for o in outcomes] == [False, True]
    assert outcomes[0].refusal is not None
    assert "authorized" in outcomes[0].refusal.message and outcomes[0].refusal.status == 409
    assert outcomes[0].rollback.state == RollbackState.AUTHORIZED
    assert SignOff.objects.filter(rollback=first).get().signer == cast.victor


def test_a_batch_rejection_rejects_each_request_with_the_one_comment(cast):
    filed = reviewer_errors(cast, 2)
    outcomes = sign_off_many([r.pk for r in filed], signer=cast.vera, decision="reject", comment="not an error")
    assert {o.rollback.state for o in outcomes} == {RollbackState.REJECTED}
    assert set(SignOff.objects.values_list("comment", flat=True)) == {"not an error"}


def test_a_person_without_the_role_gets_a_refusal_for_each_request_and_nothing_is_signed(cast):
    filed = reviewer_errors(cast, 2)
    # audrey (auditor) sees every rollback but signs none.
    outcomes = sign_off_many([r.pk for r in filed], signer=cast.audrey, decision="approve")
    assert [o.signed for o in outcomes] == [False, False]
    assert all(o.refusal and o.refusal.message == "Only verifier sign off this rollback." for o in outcomes)
    assert not SignOff.objects.exists()
    assert len(events("rollback.signoff_refused", actor="audrey")) == 2


def test_requests_of_different_triggers_are_refused_whole_and_nothing_is_signed(cast):
    (reviewer_error,) = reviewer_errors(cast, 1)
    incident = request_rollback(
        requester=cast.ines, trigger="incident", reason="outage", actions=[record(cast.shop, "wire.transfer").pk]
    )
    before = events()
    # audrey signs neither, but the mixed selection is refused before anyone's rules are asked.
    with pytest.raises(Invalid) as refused:
        sign_off_many([reviewer_error.pk, incident.pk], signer=cast.audrey, decision="approve")
    assert refused.value.errors == {
        "rollback": [
            "A batch decision covers requests of one trigger; these are incident and reviewer_error. "
            "Nothing was signed."
        ]
    }
    assert events() == before  # nothing signed, nothing refused one by one


def test_ids_the_signer_may_not_see_or_that_do_not_exist_are_refused_whole(cast):
    (visible,) = reviewer_errors(cast, 1)
    incident = request_rollback(
        requester=cast.ines, trigger="incident", reason="outage", actions=[record(cast.shop, "wire.transfer").pk]
    )
    for ids in ([visible.pk, 999_999], [visible.pk, incident.pk]):  # vera may not see the incident
        with pytest.raises(Invalid) as refused:
            sign_off_many(ids, signer=cast.vera, decision="approve")
        assert refused.value.errors == {
            "rollback": [f"No rollback you may see has the number #{ids[1]}; nothing was signed."]
        }
    assert Rollback.objects.get(pk=visible.pk).state == RollbackState.PENDING_AUTHORIZATION
    assert not SignOff.objects.exists()


@pytest.mark.parametrize(
    ("ids", "decision", "comment", "errors"),
    [
        ([1], "maybe", "", {"decision": ['Must be "approve" or "reject".']}),
        ([1], "approve", 7, {"comment": ["Must be text."]}),
        ([], "approve", "", {"rollback": ["Select at least one request."]}),
        ("1", "approve", "", {"rollback": ["Select at least one request."]}),
        ([1, "2"], "approve", "", {"rollback": ["Each selected request must be a rollback number."]}),
        ([True], "approve", "", {"rollback": ["Each selected request must be a rollback number."]}),
        ([0], "approve", "", {"rollback": ["Each selected request must be a rollback number."]}),
        (
            list(range(1, MAX_BATCH + 2)),
            "approve",
            "",
            {"rollback": [f"A batch decision covers at most {MAX_BATCH} requests; {MAX_BATCH + 1} were selected."]},
        ),
    ],
)
def test_bad_input_is_a_clear_error_before_anything_is_signed(cast, ids, decision, comment, errors):
    with pytest.raises(Invalid) as refused:
        sign_off_many(ids, signer=cast.vera, decision=decision, comment=comment)
    assert refused.value.errors == errors


def test_the_same_request_named_twice_is_signed_once(cast):
    (rollback,) = reviewer_errors(cast, 1)
    outcomes = sign_off_many([rollback.pk, rollback.pk], signer=cast.vera, decision="approve")
    assert len(outcomes) == 1 and outcomes[0].signed
    assert SignOff.objects.filter(rollback=rollback).count() == 1


def test_a_batch_costs_the_same_queries_for_each_request_plus_a_fixed_few(cast):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(count):
        ids = [r.pk for r in reviewer_errors(cast, count)]
        with capturing_queue(), CaptureQueriesContext(connection) as captured:
            sign_off_many(ids, signer=cast.vera, decision="approve")
        return len(captured)

    queries(1)  # the signer's roles and permissions, read once and kept on the user
    two, four = queries(2), queries(4)
    each = (four - two) // 2
    assert four - two == 2 * each  # linear: one sign_off per request, nothing that grows faster
    assert two - 2 * each == 2  # the selection, and the rows read again for the page
    # sign_off's own: lock, rules, sign-off, audit, authorization, outbox (savepoints in tests; SQLite appends to
    # the trail in Python, PostgreSQL in one function call)
    assert each <= (14 if connection.vendor == "postgresql" else 18)
