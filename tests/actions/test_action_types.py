import pytest

from actions.api.serializers import reversal_summary
from policies.manifest import SignoffRequirement

pytestmark = pytest.mark.django_db
URL = "/api/v1/action-types/"


def test_the_action_types_tell_a_reviewer_what_a_reversal_would_cost(client_for, cast):
    response = client_for(cast.alice).get(URL)

    assert response.status_code == 200
    data = response.json()
    assert data["policy_label"] == "demo-2026-11" and data["count"] == len(data["results"]) == 8
    refund = next(item for item in data["results"] if item["name"] == "refund.issue")
    assert refund == {
        "name": "refund.issue",
        "reversibility": "full",
        "method": "webhook",
        "operation": "refund.chargeback",
        "window": "30d",
        "window_seconds": 30 * 86400,
        "prerequisites": ["account_open"],
        "side_effects": ["the customer is charged back the refunded amount"],
        "cascades_to": ["loyalty.points_grant"],
        "compensations": [{"notify": "customer", "template": "refund_reversed"}],
        "amount_field": "amount",
        "payload_schema": {
            "type": "object",
            "required": ["amount"],
            "properties": {
                "amount": {"type": ["string", "number"]},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
        "window_expired_signoffs": [{"role": "executive", "count": 1}],
        "summary": "reversible within 30 days; after that an executive must sign off",
    }


def test_each_summary_reads_as_a_sentence_for_its_class_and_window(client_for, cast):
    summaries = {item["name"]: item["summary"] for item in client_for(cast.shop).get(URL).json()["results"]}

    assert summaries["email.send"] == "partly reversible within 60 seconds; after that an executive must sign off"
    assert summaries["record.update"] == "reversible at any time"
    assert summaries["benefits.reevaluate"] == "partly reversible at any time"
    assert summaries["wire.transfer"] == "not reversible: a reversal opens a task for a person to remediate by hand"


def test_a_summary_names_several_extra_signers(policy):
    expired = (SignoffRequirement("executive", 1), SignoffRequirement("legal", 2))
    manifest = type(policy)(**{**policy.__dict__, "window_expired_signoffs": expired})

    summary = reversal_summary(manifest.action_types["tier.upgrade"], manifest)

    assert summary == "reversible within 90 days; after that an executive and 2 people in legal must also sign off"
