from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from actions.models import Action, ActionState
from audit.models import AuditLink
from rollback_console.errors import Forbidden, Invalid
from rollbacks.models import Rollback, Step
from rollbacks.services import plan_rollback, request_rollback
from tests.rollbacks.requesting import assert_audit_event, events, record

pytestmark = pytest.mark.django_db


def chain(cast):
    """refund -> points -> tier -> benefits: a cascade three levels deep."""
    refund = record(cast.shop, "refund.issue")
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    tier = record(cast.shop, "tier.upgrade", caused_by=(points.external_id,))
    benefits = record(cast.shop, "benefits.reevaluate", caused_by=(tier.external_id,))
    return refund, points, tier, benefits


def test_a_customer_request_freezes_its_targets_cascade_and_plan(cast):
    refund, points, tier, benefits = chain(cast)

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="wrong", actions=[refund.pk])

    assert rollback.state == "pending_authorization"
    assert rollback.plan == {
        "actions": 1,
        "cascade": 3,
        "irreversible": 0,
        "window_expired": 0,
        "already_reversed": 0,
        "action_ids": [refund.pk],
    }
    assert rollback.max_cascade_depth == rollback.confirmed_depth == 3
    assert rollback.required_signoffs == [{"role": "customer_service", "count": 1}]
    steps = {step.action_id: step for step in rollback.steps.all()}
    assert {pk: step.depth for pk, step in steps.items()} == {refund.pk: 0, points.pk: 1, tier.pk: 2, benefits.pk: 3}
    assert steps[refund.pk].via_id is None
    assert steps[points.pk].via_id == steps[refund.pk].pk
    assert steps[benefits.pk].via_id == steps[tier.pk].pk
    assert {step.outcome for step in steps.values()} == {"pending"}


def test_the_requested_actions_become_rollback_pending(cast):
    refund, points, tier, benefits = chain(cast)

    request_rollback(requester=cast.carl, trigger="customer_request", reason="wrong", actions=[refund.pk])

    states = set(Action.objects.filter(pk__in=[refund.pk, points.pk, tier.pk, benefits.pk]).values_list("state"))
    assert states == {(ActionState.ROLLBACK_PENDING,)}


def test_a_cycle_gets_a_loop_step_that_names_its_path_and_stays_pending(cast):
    tier = record(cast.shop, "tier.upgrade")
    benefits = record(cast.shop, "benefits.reevaluate", caused_by=(tier.external_id,))
    reinstate = record(cast.shop, "membership.reinstate", caused_by=(benefits.external_id,))
    from actions.services import add_links

    add_links(reinstate, [tier.external_id], actor="shop")

    rollback = request_rollback(requester=cast.ines, trigger="incident", reason="loop", actions=[tier.pk])

    [loop] = rollback.steps.filter(is_loop=True)
    assert loop.action_id == tier.pk and loop.depth == 3 and loop.outcome == "pending"
    assert loop.via == rollback.steps.get(action_id=reinstate.pk, is_loop=False)
    assert f"action {tier.pk} -> action {benefits.pk} -> action {reinstate.pk} -> action {tier.pk}" in loop.detail
    assert rollback.plan["cascade"] == 2


def test_a_diamond_gets_one_step_for_its_shared_action(cast):
    refund = record(cast.shop, "refund.issue")
    points_a = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    points_b = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    tier = record(cast.shop, "tier.upgrade", caused_by=(points_a.external_id, points_b.external_id))

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    assert rollback.steps.filter(action=tier).count() == 1
    assert rollback.plan["cascade"] == 3


def test_max_cascade_depth_defaults_to_the_triggers_cap_and_may_be_lower(cast):
    refund, *_ = chain(cast)

    default = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="x", actions=[refund.pk])
    lower = request_rollback(
        requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk], max_cascade_depth=0
    )

    assert default.max_cascade_depth == 1
    assert lower.max_cascade_depth == lower.confirmed_depth == 0
    # the plan still reaches the graph's end; steps past the depth wait for confirmation when executed
    assert lower.steps.count() == 4 and lower.plan["cascade"] == 3


def test_a_depth_above_the_triggers_cap_is_refused(cast):
    refund = record(cast.shop)

    with pytest.raises(Invalid) as refused:
        request_rollback(
            requester=cast.bob, trigger="reviewer_error", reason="x", actions=[refund.pk], max_cascade_depth=2
        )

    assert "at most 1" in refused.value.errors["max_cascade_depth"][0]
    assert not Rollback.objects.exists()


def test_an_open_window_needs_only_the_triggers_signoffs(cast):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=29))

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    assert rollback.required_signoffs == [{"role": "customer_service", "count": 1}]
    assert rollback.plan["window_expired"] == 0


def test_an_expired_window_adds_the_executive_after_the_triggers_roles(cast):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=31))

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    assert rollback.required_signoffs == [
        {"role": "customer_service", "count": 1},
        {"role": "executive", "count": 1},
    ]
    assert rollback.plan["window_expired"] == 1


def test_an_expired_window_downstream_counts_too(cast):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=1))
    record(cast.shop, "email.send", executed_at=timezone.now() - timedelta(minutes=5))  # 60 s window, not linked
    points = record(cast.shop, "loyalty.points_grant", caused_by=(refund.external_id,))
    Action.objects.filter(pk=points.pk).update(window_ends_at=timezone.now() - timedelta(seconds=1))

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    assert rollback.plan["window_expired"] == 1
    assert [item["role"] for item in rollback.required_signoffs] == ["customer_service", "executive"]


def test_a_regulatory_order_that_already_needs_an_executive_still_needs_one(cast):
    refund = record(cast.shop, executed_at=timezone.now() - timedelta(days=40))

    rollback = request_rollback(
        requester=cast.lena, trigger="regulatory_order", reason="order", actions=[refund.pk], reference="ORD-1"
    )

    assert rollback.required_signoffs == [{"role": "legal", "count": 1}, {"role": "executive", "count": 1}]


def test_irreversible_actions_are_counted_in_the_plan(cast):
    wire = record(cast.shop, "wire.transfer")

    rollback = request_rollback(requester=cast.ines, trigger="incident", reason="x", actions=[wire.pk])

    assert rollback.plan["irreversible"] == 1


def test_a_selector_targets_every_matching_action_the_requester_may_see(cast):
    from policies.selectors import current_policy

    refunds = [record(cast.shop) for _ in range(3)]
    record(cast.shop, "email.send")
    record(cast.other_shop)  # seen by paula too: selected by type and version, so it is a target as well

    rollback = request_rollback(
        requester=cast.paula,
        trigger="policy_reversal",
        reason="version withdrawn",
        selector={"policy_version": current_policy()[0], "action_type": "refund.issue"},
    )

    assert rollback.plan["action_ids"] == sorted(
        Action.objects.filter(action_type="refund.issue").values_list("pk", flat=True)
    )
    assert set(rollback.plan["action_ids"]) >= {r.pk for r in refunds}
    assert rollback.selector == {"policy_version": current_policy()[0], "action_type": "refund.issue"}


def test_an_integrator_may_target_only_its_own_actions(cast):
    mine = record(cast.shop)
    theirs = record(cast.other_shop)

    with pytest.raises(Invalid) as refused:
        request_rollback(requester=cast.shop, trigger="customer_request", reason="x", actions=[mine.pk, theirs.pk])

    assert refused.value.errors == {"actions": [f"No action you may see has the id {theirs.pk}."]}
    rollback = request_rollback(requester=cast.shop, trigger="customer_request", reason="x", actions=[mine.pk])
    assert rollback.plan["action_ids"] == [mine.pk]


def test_an_integrators_selector_sees_only_its_own_actions(cast):
    mine = record(cast.shop)
    record(cast.other_shop)

    rollback = request_rollback(
        requester=cast.shop, trigger="customer_request", reason="x", selector={"action_type": "refund.issue"}
    )

    assert rollback.plan["action_ids"] == [mine.pk]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"trigger": "whim"}, "trigger"),
        ({"trigger": ""}, "trigger"),
        ({"reason": "  "}, "reason"),
        ({"reason": 7}, "reason"),
        ({"actions": None}, "non_field_errors"),
        ({"selector": {"action_type": "refund.issue"}}, "non_field_errors"),
        ({"actions": []}, "actions"),
        ({"actions": "17"}, "actions"),
        ({"actions": ["17"]}, "actions"),
        ({"actions": [True]}, "actions"),
        ({"actions": [10**12]}, "actions"),
        ({"actions": [10**30]}, "actions"),
        ({"max_cascade_depth": -1}, "max_cascade_depth"),
        ({"max_cascade_depth": "2"}, "max_cascade_depth"),
        ({"reference": 12}, "reference"),
    ],
)
def test_bad_input_is_refused_with_field_errors(cast, arguments, field):
    refund = record(cast.shop)
    request = {"trigger": "customer_request", "reason": "x", "actions": [refund.pk], **arguments}

    with pytest.raises(Invalid) as refused:
        request_rollback(requester=cast.carl, **request)

    assert field in refused.value.errors
    assert not Rollback.objects.exists()


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ({}, "Give at least one filter."),
        ("refund.issue", "Must be an object of action filters."),
        ({"action_type": "no.such.type"}, "No action you may see matches these filters."),
        ({"colour": "red"}, {"colour": ["Unknown filter."]}),
    ],
)
def test_a_bad_selector_is_refused_with_its_error(cast, selector, message):
    record(cast.shop)

    with pytest.raises(Invalid) as refused:
        request_rollback(requester=cast.ines, trigger="incident", reason="x", selector=selector)

    errors = refused.value.errors["selector"]
    assert errors == message if isinstance(message, dict) else errors == [message]


def test_a_bad_selector_value_is_refused_with_its_error(cast):
    with pytest.raises(Invalid) as refused:
        request_rollback(requester=cast.ines, trigger="incident", reason="x", selector={"executed_after": "soon"})

    assert "executed_after" in refused.value.errors["selector"]


def test_a_regulatory_order_needs_its_reference(cast):
    refund = record(cast.shop)

    with pytest.raises(Invalid) as refused:
        request_rollback(requester=cast.lena, trigger="regulatory_order", reason="order", actions=[refund.pk])

    assert "reference" in refused.value.errors


@pytest.mark.parametrize(
    ("username", "trigger"),
    [
        ("alice", "customer_request"),
        ("vera", "reviewer_error"),
        ("carl", "incident"),
        ("lena", "policy_reversal"),
        ("eddie", "regulatory_order"),
        ("audrey", "incident"),
        ("nobody", "customer_request"),
    ],
)
def test_a_requester_without_a_requesting_role_is_refused_and_audited(cast, username, trigger):
    refund = record(cast.shop)
    requester = getattr(cast, username)

    with pytest.raises(Forbidden):
        request_rollback(requester=requester, trigger=trigger, reason="x", actions=[refund.pk], reference="R-1")

    event = assert_audit_event("rollback.refused", actor=username, action_id=refund.pk)
    assert orjson.loads(event.data)["trigger"] == trigger
    assert not Rollback.objects.exists()
    assert Action.objects.get(pk=refund.pk).state == ActionState.EXECUTED


def test_a_refusal_naming_ids_past_64_bits_is_audited_without_them(cast):
    refund = record(cast.shop)

    with pytest.raises(Forbidden):
        request_rollback(requester=cast.nobody, trigger="incident", reason="x", actions=[refund.pk, 10**30, "x"])

    assert orjson.loads(assert_audit_event("rollback.refused", actor="nobody").data)["actions"] == [refund.pk]


def test_a_plan_shows_what_a_request_would_freeze_and_writes_nothing(cast):
    refund, *_ = chain(cast)
    before = len(events())

    plan = plan_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    assert plan.counts == {
        "actions": 1,
        "cascade": 3,
        "irreversible": 0,
        "window_expired": 0,
        "already_reversed": 0,
        "action_ids": [refund.pk],
    }
    assert plan.required_signoffs == [{"role": "customer_service", "count": 1}]
    assert len(events()) == before
    assert not Rollback.objects.exists() and not Step.objects.exists()
    assert Action.objects.get(pk=refund.pk).state == ActionState.EXECUTED


def test_the_request_is_audited_linked_to_every_planned_action(cast):
    refund, points, tier, benefits = chain(cast)

    rollback = request_rollback(requester=cast.carl, trigger="customer_request", reason="why", actions=[refund.pk])

    event = assert_audit_event("rollback.requested", rollback_id=rollback.pk, actor="carl")
    data = orjson.loads(event.data)
    assert data["reason"] == "why" and data["plan"]["action_ids"] == [refund.pk]
    linked = set(AuditLink.objects.filter(rollback_id=rollback.pk).values_list("action_id", flat=True))
    assert linked == {refund.pk, points.pk, tier.pk, benefits.pk}


def test_a_second_live_request_may_include_an_action_already_pending(cast):
    refund = record(cast.shop)
    request_rollback(requester=cast.carl, trigger="customer_request", reason="x", actions=[refund.pk])

    second = request_rollback(requester=cast.ines, trigger="incident", reason="y", actions=[refund.pk])

    assert second.steps.get().action_id == refund.pk
    assert Action.objects.get(pk=refund.pk).state == ActionState.ROLLBACK_PENDING
