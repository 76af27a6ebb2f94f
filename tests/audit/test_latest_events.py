"""What a page shows of a trail: its newest events, oldest first, narrowed as the API narrows it."""

import pytest

from audit.selectors import latest_audit_events
from tests.audit.conftest import record

pytestmark = pytest.mark.django_db


def test_a_page_shows_the_newest_events_of_the_action_oldest_first(cast):
    mine = record(5, action_id=7)
    record(2, action_id=8)

    assert latest_audit_events(action_id=7, scope=None, limit=3) == mine[2:]
    assert latest_audit_events(action_id=7, scope=None, limit=10) == mine


def test_a_rollbacks_latest_events_are_its_own(cast):
    record(2, rollback_id=40)
    theirs = record(3, kind="rollback.requested", rollback_id=41)

    assert latest_audit_events(rollback_id=41, scope=None, limit=2) == theirs[1:]
