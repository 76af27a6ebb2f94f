import pytest

from actions.models import ActionLink
from actions.services import add_links
from rollback_console.errors import Invalid
from tests.actions.conftest import audit_events

pytestmark = pytest.mark.django_db


def _url(action):
    return f"/api/v1/actions/{action.pk}/links/"


def test_an_integrator_links_actions_learned_after_the_fact_and_gets_the_action_back(client_for, cast, recorded):
    upgrade = recorded(external_id="tier", action_type="tier.upgrade")
    benefits = recorded(external_id="benefits", action_type="benefits.reevaluate")

    response = client_for(cast.shop).post(_url(upgrade), {"causes": ["benefits"]}, format="json")

    assert response.status_code == 200
    assert response.json()["id"] == upgrade.pk and response.json()["causes"] == ["benefits"]
    assert ActionLink.objects.filter(upstream=upgrade, downstream=benefits).exists()
    (event,) = audit_events("action.linked", action_id=upgrade.pk)
    assert event.actor == "shop" and '"external_id":"benefits"' in event.data


def test_links_may_close_a_cycle(cast, recorded):
    upgrade = recorded(external_id="tier", action_type="tier.upgrade")
    reinstate = recorded(external_id="reinstate", action_type="membership.reinstate", caused_by=["tier"])

    add_links(reinstate, ["tier"], actor="shop")

    assert ActionLink.objects.filter(upstream=reinstate, downstream=upgrade).exists()
    assert ActionLink.objects.filter(upstream=upgrade, downstream=reinstate).exists()


def test_a_link_that_exists_already_is_no_error_and_is_not_recorded_twice(client_for, cast, recorded):
    order = recorded(external_id="order")
    recorded(external_id="points", action_type="loyalty.points_grant", caused_by=["order"])
    client = client_for(cast.shop)

    first = client.post(_url(order), {"causes": ["points"]}, format="json")
    second = client.post(_url(order), {"causes": ["points", "points"]}, format="json")

    assert (first.status_code, second.status_code) == (200, 200)
    assert ActionLink.objects.filter(upstream=order).count() == 1
    assert audit_events("action.linked", action_id=order.pk) == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "causes"),
        ({"causes": []}, "causes"),
        ({"causes": "points"}, "causes"),
        ({"causes": [1]}, "causes"),
        ({"causes": ["nowhere"]}, "causes"),
        ({"causes": ["theirs"]}, "causes"),
        ({"causes": ["order"]}, "causes"),
        ({"causes": ["points"], "extra": True}, "extra"),
        ([], "non_field_errors"),
    ],
)
def test_a_bad_links_body_gets_a_400_naming_the_field(client_for, cast, recorded, payload, field):
    order = recorded(external_id="order")
    recorded(external_id="points", action_type="loyalty.points_grant")
    recorded(cast.other_shop, external_id="theirs")

    response = client_for(cast.shop).post(_url(order), payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not ActionLink.objects.exists()


def test_only_the_integrator_that_recorded_an_action_links_it(client_for, cast, recorded):
    order = recorded(external_id="order")
    recorded(external_id="points", action_type="loyalty.points_grant")

    assert client_for(cast.other_shop).post(_url(order), {"causes": ["points"]}, format="json").status_code == 404
    assert client_for(cast.alice).post(_url(order), {"causes": ["points"]}, format="json").status_code == 403
    assert client_for(cast.nobody).post(_url(order), {"causes": ["points"]}, format="json").status_code == 403
    assert not ActionLink.objects.exists()


def test_the_service_refuses_causes_of_another_integrator(cast, recorded):
    order = recorded(external_id="order")
    recorded(cast.other_shop, external_id="theirs")

    with pytest.raises(Invalid) as refused:
        add_links(order, ["theirs"], actor="shop")

    assert refused.value.errors == {"causes": ["Not recorded by this integrator: 'theirs'."]}
