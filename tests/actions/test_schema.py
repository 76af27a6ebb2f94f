"""The OpenAPI schema documents the actions endpoints exactly as they answer."""

import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from actions.api.urls import urlpatterns
from tests.actions.conftest import action_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema():
    GENERATOR_STATS.reset()
    generated = SchemaGenerator(patterns=urlpatterns).get_schema(request=None, public=True)
    assert not GENERATOR_STATS, "schema warnings or errors for the actions endpoints"
    return generated


def test_the_actions_schema_is_valid_and_free_of_warnings(schema):
    validate_schema(schema)

    assert set(schema["paths"]) == {
        "/action-types/",
        "/actions/",
        "/actions/{id}/",
        "/actions/batch/",
        "/actions/{id}/links/",
        "/actions/{id}/reversal-preview/",
    }


def test_every_write_documents_its_error_responses(schema):
    create = schema["paths"]["/actions/"]["post"]["responses"]
    links = schema["paths"]["/actions/{id}/links/"]["post"]["responses"]

    assert {"200", "201", "400", "401", "403", "409", "413"} <= set(create)
    assert {"200", "400", "401", "403", "404", "409", "413"} <= set(links)


@pytest.mark.parametrize(("component", "path"), [("Action", ""), ("ActionDetail", "{id}/")])
def test_the_documented_action_fields_are_the_ones_the_api_sends(schema, client_for, cast, component, path):
    action = client_for(cast.shop).post("/api/v1/actions/", action_body(), format="json").json()
    sent = client_for(cast.shop).get("/api/v1/actions/" + path.format(id=action["id"])).json()
    if not path:
        sent = sent["results"][0]

    properties = schema["components"]["schemas"][component]["properties"]
    assert set(properties) == set(sent)
    reversibility = schema["components"]["schemas"]["Reversibility"]["properties"]
    assert (
        set(reversibility)
        == set(sent["reversibility"])
        == {
            "class",
            "method",
            "prerequisites",
            "window_ends_at",
            "side_effects",
        }
    )


def test_the_schema_is_served_at_api_v1_schema(client_for, cast):
    response = client_for(cast.shop).get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert "/api/v1/actions/batch/" in response.json()["paths"]
