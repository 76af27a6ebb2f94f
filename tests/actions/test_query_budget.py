"""Recording costs the same number of queries whatever the batch size or the number of links."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from actions.api.views import ActionPagination
from actions.services import record_action
from tests.actions.conftest import action_body

pytestmark = pytest.mark.django_db


def _queries(client, url, payload):
    with CaptureQueriesContext(connection) as captured:
        response = client.post(url, payload, format="json")
    assert response.status_code == 201, response.content
    return len(captured)


def test_one_action_costs_as_much_with_fifty_causes_as_with_none(client_for, cast, recorded):
    causes = [recorded(external_id=f"cause-{i}").external_id for i in range(50)]
    client = client_for(cast.shop)
    _queries(client, "/api/v1/actions/", action_body())  # warm the policy's parse cache

    alone = _queries(client, "/api/v1/actions/", action_body())
    linked = _queries(client, "/api/v1/actions/", action_body(caused_by=causes))

    assert linked == alone + 1  # the links' one insert


def test_recording_one_action_stays_within_its_query_budget(cast, django_assert_num_queries):
    record_action(cast.shop, action_body())

    # the policy version, known actions and approvers at once; the insert; the audit append (one call of
    # audit_append on PostgreSQL, head lock + insert + update elsewhere); the test's savepoint + release
    with django_assert_num_queries(5 if connection.vendor == "postgresql" else 7):
        record_action(cast.shop, action_body())


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-call audit append is PostgreSQL's")
def test_a_single_post_over_the_api_costs_four_queries_like_a_bare_create(client_for, cast):
    client = client_for(cast.shop)
    _queries(client, "/api/v1/actions/", action_body())  # warm the policy's parse cache

    # lookup (policy, replays, causes, approver), insert, audit append, and the savepoint pair of the test's
    # transaction standing in for the request's own BEGIN/COMMIT (not counted as queries)
    assert _queries(client, "/api/v1/actions/", action_body()) == 5


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-call audit append is PostgreSQL's")
def test_a_batch_of_a_hundred_costs_as_many_queries_as_one_action_plus_its_links(client_for, cast):
    client = client_for(cast.shop)
    url = "/api/v1/actions/batch/"
    _queries(client, url, {"actions": [action_body()]})
    first = action_body()

    one = _queries(client, url, {"actions": [action_body()]})
    hundred = _queries(
        client, url, {"actions": [first, *[action_body(caused_by=[first["external_id"]]) for _ in range(99)]]}
    )

    assert one == 5
    # the links' insert; the ids drawn for the COPY; the audit append of more than 20 events is three statements
    assert hundred == one + 1 + 1 + 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite splits large inserts by its parameter limit")
def test_a_batch_of_a_thousand_costs_as_many_queries_as_a_batch_of_ten(client_for, cast):
    client = client_for(cast.shop)
    url = "/api/v1/actions/batch/"
    _queries(client, url, {"actions": [action_body()]})

    def batch(size):
        first = action_body()
        rest = [action_body(caused_by=[first["external_id"]]) for _ in range(size - 1)]
        return {"actions": [first, *rest]}

    # From 21 actions the ids are drawn first and the rows go in by COPY, and the audit append is three statements
    # whatever the number; a small batch takes one statement for each.
    assert _queries(client, url, batch(50)) == _queries(client, url, batch(1000))
    assert _queries(client, url, batch(10)) == _queries(client, url, batch(50)) - 3


def test_listing_costs_as_much_for_fifty_actions_as_for_five(client_for, cast, recorded):
    first = recorded()
    for _ in range(4):
        recorded(caused_by=[first.external_id])
    client = client_for(cast.audrey)
    client.get("/api/v1/actions/")  # the same user object is reused: its roles are read once

    with CaptureQueriesContext(connection) as five:
        assert len(client.get("/api/v1/actions/").json()["results"]) == 5
    for _ in range(45):
        recorded(caused_by=[first.external_id])
    with CaptureQueriesContext(connection) as fifty:
        assert len(client.get("/api/v1/actions/").json()["results"]) == 50

    assert len(fifty) == len(five)


def test_a_list_page_is_at_most_a_thousand_actions():
    request = Request(APIRequestFactory().get("/api/v1/actions/", {"limit": "100000"}))

    assert ActionPagination().get_limit(request) == 1000
