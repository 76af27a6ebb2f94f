"""Every trigger against every role, from the demo policy: who may request, who may sign, and why the others are
refused (403). Each role is played by a cast member holding that role alone."""

import pytest

from policies.roles import ROLES, TRIGGERS
from rollback_console.errors import Forbidden
from rollbacks.services import request_rollback, sign_off
from tests.rollbacks.requesting import colleague, record

pytestmark = pytest.mark.django_db

PLAYED_BY = {
    "reviewer": "bob",
    "verifier": "vera",
    "customer_service": "carl",
    "incident_commander": "ines",
    "policy_owner": "paula",
    "legal": "lena",
    "executive": "eddie",
    "integrator": "shop",
    "auditor": "audrey",
}
MAY_REQUEST = {
    "reviewer_error": {"reviewer"},
    "customer_request": {"customer_service", "integrator"},
    "incident": {"incident_commander"},
    "policy_reversal": {"policy_owner"},
    "regulatory_order": {"legal"},
}
MAY_SIGN = {
    "reviewer_error": {"verifier"},
    "customer_request": {"customer_service"},
    "incident": {"incident_commander"},
    "policy_reversal": {"policy_owner", "legal"},
    "regulatory_order": {"legal", "executive"},
}
# A requester other than every signer, so signing is never refused for being one's own request.
FILED_BY = {
    "reviewer_error": ("rhea", "reviewer"),
    "customer_request": ("cora", "customer_service"),
    "incident": ("ivan", "incident_commander"),
    "policy_reversal": ("pablo", "policy_owner"),
    "regulatory_order": ("leo", "legal"),
}
TABLE = [(trigger, role) for trigger in TRIGGERS for role in ROLES]


def _file(cast, trigger, requester):
    action = record(cast.shop, approved_by="alice")
    return request_rollback(
        requester=requester, trigger=trigger, reason="table", actions=[action.pk], reference="ORD-7"
    )


@pytest.mark.parametrize(("trigger", "role"), TABLE)
def test_who_may_request_each_trigger(cast, trigger, role):
    requester = getattr(cast, PLAYED_BY[role])

    if role in MAY_REQUEST[trigger]:
        assert _file(cast, trigger, requester).requested_by == requester
    else:
        with pytest.raises(Forbidden, match=f"may request a {trigger} rollback"):
            _file(cast, trigger, requester)


@pytest.mark.parametrize(("trigger", "role"), TABLE)
def test_who_may_sign_each_trigger(cast, trigger, role):
    rollback = _file(cast, trigger, colleague(*FILED_BY[trigger]))
    signer = getattr(cast, PLAYED_BY[role])

    if role in MAY_SIGN[trigger]:
        signed = sign_off(rollback.pk, signer=signer, decision="approve")
        assert signed.signoffs.get().role == role
    else:
        with pytest.raises(Forbidden, match="sign off this rollback"):
            sign_off(rollback.pk, signer=signer, decision="approve")


def test_the_table_matches_the_demo_policy(policy):
    for trigger in TRIGGERS:
        assert set(policy.triggers[trigger].requested_by) == MAY_REQUEST[trigger]
        assert {s.role for s in policy.triggers[trigger].signoffs} == MAY_SIGN[trigger]
