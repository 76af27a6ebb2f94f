from datetime import timedelta

import pytest
from django.utils import timezone

from actions.cascade import walk_cascade
from actions.models import Action, ActionLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_action(cast, policy):
    from policies.selectors import current_policy

    version_id = current_policy()[0]
    now = timezone.now()

    def make(external_id: str, action_type: str) -> Action:
        return Action.objects.create(
            integrator=cast.shop,
            external_id=external_id,
            action_type=action_type,
            subject="customer:1",
            executed_at=now - timedelta(hours=1),
            approved_by=cast.alice,
            approved_at=now - timedelta(hours=2),
            policy_version_id=version_id,
            reversibility="full",
            fingerprint="x",
        )

    return make


def link(upstream: Action, downstream: Action) -> None:
    ActionLink.objects.create(upstream=upstream, downstream=downstream)


def test_a_chain_is_walked_to_its_end_with_each_depth(make_action, policy):
    refund = make_action("r", "refund.issue")
    points = make_action("p", "loyalty.points_grant")
    tier = make_action("t", "tier.upgrade")
    benefits = make_action("b", "benefits.reevaluate")
    link(refund, points), link(points, tier), link(tier, benefits)

    walk = walk_cascade([refund.pk], policy)

    depths = {node.action_id: node.depth for node in walk.nodes.values()}
    assert depths == {refund.pk: 0, points.pk: 1, tier.pk: 2, benefits.pk: 3}
    assert walk.loops == []
    assert walk.path_to(benefits.pk) == (refund.pk, points.pk, tier.pk, benefits.pk)


def test_links_to_types_outside_cascades_to_are_not_followed(make_action, policy):
    refund = make_action("r", "refund.issue")
    email = make_action("e", "email.send")
    link(refund, email)

    assert list(walk_cascade([refund.pk], policy).nodes) == [refund.pk]


def test_a_cycle_stops_with_a_loop_arrival_and_nothing_walked_twice(make_action, policy):
    tier = make_action("t", "tier.upgrade")
    benefits = make_action("b", "benefits.reevaluate")
    reinstate = make_action("m", "membership.reinstate")
    link(tier, benefits), link(benefits, reinstate), link(reinstate, tier)

    walk = walk_cascade([tier.pk], policy)

    assert len(walk.nodes) == 3
    [loop] = walk.loops
    assert (loop.from_action, loop.to_action, loop.depth) == (reinstate.pk, tier.pk, 3)
    assert loop.path == (tier.pk, benefits.pk, reinstate.pk, tier.pk)


def test_a_diamond_reaches_its_shared_action_once_and_is_no_loop(make_action, policy):
    refund = make_action("r", "refund.issue")
    points_a = make_action("pa", "loyalty.points_grant")
    points_b = make_action("pb", "loyalty.points_grant")
    tier = make_action("t", "tier.upgrade")
    link(refund, points_a), link(refund, points_b), link(points_a, tier), link(points_b, tier)

    walk = walk_cascade([refund.pk], policy)

    assert len(walk.nodes) == 4 and walk.nodes[tier.pk].depth == 2
    assert walk.loops == []


def test_the_walk_costs_one_query_per_level_whatever_the_width(make_action, policy, django_assert_num_queries):
    refunds = [make_action(f"r{i}", "refund.issue") for i in range(30)]
    for i, refund in enumerate(refunds):
        link(refund, make_action(f"p{i}", "loyalty.points_grant"))

    with django_assert_num_queries(3):  # targets, level 1, level 2 (empty)
        walk = walk_cascade([r.pk for r in refunds], policy)
    assert len(walk.downstream) == 30
