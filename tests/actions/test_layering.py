"""actions knows nothing of rollbacks, in its imports (import-linter, .ci/run) and in its queries: an action's
detail reads its rollbacks through rollbacks' own selector, which the API and the console compose."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.selectors import get_action_for
from rollbacks.selectors import rollbacks_of_action
from rollbacks.services import request_rollback
from tests.rollbacks.requesting import record

pytestmark = pytest.mark.django_db


def test_reading_an_action_with_its_details_queries_no_table_of_rollbacks(cast):
    action = record(cast.shop, external_id="layering-refund")
    request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[action.pk])
    with CaptureQueriesContext(connection) as queries:
        get_action_for(cast.audrey, action.pk, details=True)
    assert queries.captured_queries
    assert not [query["sql"] for query in queries.captured_queries if "rollbacks_" in query["sql"]]


def test_the_rollbacks_of_an_action_are_read_by_rollbacks_in_one_query(cast):
    action = record(cast.shop, external_id="layering-points")
    rollback = request_rollback(requester=cast.bob, trigger="reviewer_error", reason="wrong", actions=[action.pk])
    with CaptureQueriesContext(connection) as queries:
        found = rollbacks_of_action(action.pk)
    assert found == [{"id": rollback.pk, "trigger": "reviewer_error", "state": rollback.state, "outcome": "pending"}]
    assert len(queries) == 1
