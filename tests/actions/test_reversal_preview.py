from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def _ago(**delta):
    return (timezone.now() - timedelta(**delta)).isoformat()


def _url(action):
    return f"/api/v1/actions/{action.pk}/reversal-preview/"


@pytest.fixture
def chain(recorded):
    """refund -> points -> tier -> benefits -> reinstate -> tier again (a cycle); the points' window has passed."""
    when = _ago(hours=1)
    actions = {
        "refund": recorded(external_id="refund", executed_at=when),
        "points": recorded(
            external_id="points", action_type="loyalty.points_grant", caused_by=["refund"], executed_at=_ago(days=40)
        ),
        "tier": recorded(external_id="tier", action_type="tier.upgrade", caused_by=["points"], executed_at=when),
        "benefits": recorded(external_id="benefits", action_type="benefits.reevaluate", caused_by=["tier"]),
        "reinstate": recorded(external_id="reinstate", action_type="membership.reinstate", caused_by=["benefits"]),
        "email": recorded(external_id="email", action_type="email.send", executed_at=when),
    }
    from actions.services import add_links

    add_links(actions["reinstate"], ["tier"], actor="shop")
    return actions


def test_a_reviewer_sees_the_window_and_the_whole_cascade_with_depths(client_for, cast, chain):
    response = client_for(cast.alice).get(_url(chain["refund"]))

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["window_open"] is True
    assert data["prerequisites"] == ["account_open"]
    assert data["side_effects"] == ["the customer is charged back the refunded amount"]
    assert [(entry["external_id"], entry["depth"]) for entry in data["cascade"]] == [
        ("points", 1),
        ("tier", 2),
        ("benefits", 3),
        ("reinstate", 4),
    ]
    assert data["cascade"][0]["reversibility"]["prerequisites"] == ["points_unspent"]
    assert data["cascade"][2]["reversibility"]["class"] == "partial"
    assert [(loop["from_action"], loop["to_action"]) for loop in data["loops"]] == [
        (chain["reinstate"].pk, chain["tier"].pk)
    ]


def test_a_window_passed_anywhere_in_the_cascade_asks_for_the_extra_sign_offs(client_for, cast, chain):
    refund = client_for(cast.alice).get(_url(chain["refund"])).json()
    benefits = client_for(cast.alice).get(_url(chain["benefits"])).json()

    assert refund["window_open"] is True and refund["cascade"][0]["window_open"] is False
    assert refund["extra_signoffs"] == [{"role": "executive", "count": 1}]
    assert [entry["external_id"] for entry in benefits["cascade"]] == ["reinstate", "tier"]
    assert benefits["extra_signoffs"] == []


def test_an_expired_window_names_the_extra_sign_offs(client_for, cast, recorded):
    email = recorded(external_id="old-email", action_type="email.send", executed_at=_ago(minutes=5))

    data = client_for(cast.shop).get(_url(email)).json()

    assert data["window_open"] is False
    assert data["extra_signoffs"] == [{"role": "executive", "count": 1}]
    assert data["cascade"] == []


def test_an_action_without_a_window_is_always_open(client_for, cast, recorded):
    wire = recorded(external_id="wire", action_type="wire.transfer", executed_at=_ago(days=400))

    data = client_for(cast.audrey).get(_url(wire)).json()

    assert (data["window_open"], data["window_ends_at"], data["extra_signoffs"]) == (True, None, [])
    assert data["reversibility"]["class"] == "irreversible"


def test_the_preview_is_refused_to_strangers(client_for, cast, chain):
    assert client_for(None).get(_url(chain["refund"])).status_code == 401
    assert client_for(cast.nobody).get(_url(chain["refund"])).status_code == 403
    assert client_for(cast.other_shop).get(_url(chain["refund"])).status_code == 404
