"""The links an action page lists: what caused the action and what it caused, each in the order they were linked."""

import pytest

from actions.selectors import links_of
from actions.services import add_links

pytestmark = pytest.mark.django_db


def test_an_action_lists_its_causes_and_its_effects_in_the_order_they_were_linked(recorded):
    refund = recorded(external_id="l/refund")
    points = recorded(external_id="l/points", action_type="loyalty.points_grant", caused_by=["l/refund"])
    email = recorded(external_id="l/email", action_type="email.send")
    add_links(refund, ["l/email"], actor="shop")
    tier = recorded(external_id="l/tier", action_type="tier.upgrade", caused_by=["l/points"])

    assert links_of(refund) == ([], [points, email])
    assert links_of(points) == ([refund], [tier])
    assert links_of(email) == ([refund], [])


def test_a_cycle_lists_the_same_action_upstream_and_downstream(recorded):
    first = recorded(external_id="c/1")
    second = recorded(external_id="c/2", action_type="loyalty.points_grant", caused_by=["c/1"])
    add_links(second, ["c/1"], actor="shop")

    assert links_of(first) == ([second], [second])
