import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from policies.manifest import ManifestError, parse_duration
from policies.models import PolicyVersion
from policies.selectors import current_policy
from policies.services import load_policy
from tests.conftest import DEMO_MANIFEST

pytestmark = pytest.mark.django_db

BAD_MANIFEST = """
version = "broken"
colour = "blue"

[integrators.shop]
reversal_url = "ftp://example.com"

[action_types."refund.issue"]
reversibility = "maybe"
reversal = { method = "fax" }
window = "3 weeks"
cascades_to = ["loyalty.points_grant"]

[action_types."email.send"]
reversibility = "full"
reversal = { method = "webhook", integrator = "nobody" }
compensations = [{ notify = "everyone", template = "x" }]

[action_types."record.update"]
reversibility = "full"
reversal = { method = "python", handler = "demo_shop.handlers.no_such_handler" }

[triggers.incident]
requested_by = ["incident_commander"]

[triggers.coffee_break]
signoffs = [{ role = "verifier", count = 1 }]

[triggers.reviewer_error]
signoffs = [{ role = "janitor", count = 0 }]
requested_by = ["reviewer"]
max_cascade_depth = -1
"""


def demo_text() -> str:
    return DEMO_MANIFEST.read_text()


def test_a_wrong_manifest_is_refused_with_every_error_by_key_path(cast):
    with pytest.raises(ManifestError) as refused:
        load_policy(BAD_MANIFEST, actor="paula")

    errors = refused.value.errors
    for expected in [
        "colour: unknown key",
        "integrators.shop.reversal_url: must be an http(s) URL",
        "integrators.shop.secret_env:",
        'action_types."refund.issue".reversibility: must be one of full, partial, irreversible',
        "action_types.\"refund.issue\".reversal.method: unknown method 'fax'",
        'action_types."refund.issue".window:',
        "action_types.\"refund.issue\".cascades_to[0]: 'loyalty.points_grant' is not a declared action type",
        'action_types."email.send".reversal.integrator: no [integrators.nobody] table declares it',
        'action_types."email.send".reversal.operation:',
        'action_types."email.send".compensations[0].notify:',
        'action_types."record.update".reversal.handler: cannot be imported',
        "triggers.incident.signoffs: at least one sign-off is required",
        "triggers.coffee_break: unknown trigger",
        "triggers.reviewer_error.signoffs[0].role: 'janitor' is not a signing role",
        "triggers.reviewer_error.max_cascade_depth:",
    ]:
        assert any(error.startswith(expected) for error in errors), (expected, errors)


def test_a_refused_manifest_leaves_the_current_version_current(cast):
    before = current_policy()[0]
    versions = PolicyVersion.objects.count()

    with pytest.raises(ManifestError):
        load_policy(BAD_MANIFEST, actor="paula")

    assert current_policy()[0] == before
    assert PolicyVersion.objects.count() == versions


def test_text_that_is_not_toml_is_refused_with_its_position(cast):
    with pytest.raises(ManifestError) as refused:
        load_policy("version = [unclosed", actor="paula")
    assert refused.value.errors[0].startswith("(file): not valid TOML")


def test_loading_the_same_content_again_changes_nothing(cast):
    versions, events = PolicyVersion.objects.count(), AuditEvent.objects.count()

    result = load_policy(demo_text() + "\n# a comment changes the text, not the content\n", actor="paula")

    assert (result.created, result.activated) == (False, False)
    assert PolicyVersion.objects.count() == versions
    assert AuditEvent.objects.count() == events


def test_a_new_version_becomes_current_and_an_older_content_becomes_current_again(cast):
    demo_id = current_policy()[0]
    stricter = (
        demo_text()
        .replace('version = "demo-2026-11"', 'version = "demo-2026-12"')
        .replace('window = "30d"', 'window = "14d"')
    )

    new = load_policy(stricter, actor="paula")
    assert new.created and current_policy()[0] == new.version.pk
    assert current_policy()[1].action_types["refund.issue"].window == parse_duration("14d")

    again = load_policy(demo_text(), actor="paula")
    assert (again.created, again.activated) == (False, True)
    assert current_policy()[0] == demo_id
    assert AuditEvent.objects.filter(kind="policy.activated").order_by("-seq").first().actor == "paula"


def test_the_demo_manifest_covers_every_trigger_and_method(policy):
    assert set(policy.triggers) == {
        "reviewer_error",
        "customer_request",
        "incident",
        "policy_reversal",
        "regulatory_order",
    }
    assert {t.method for t in policy.action_types.values()} == {"webhook", "python", "manual"}
    assert policy.triggers["regulatory_order"].reference_required
    assert policy.triggers["reviewer_error"].max_cascade_depth == 1
    assert policy.triggers["incident"].max_cascade_depth == 3


def test_the_command_reports_refusals_and_no_ops(cast, tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD_MANIFEST)
    with pytest.raises(CommandError, match="colour: unknown key"):
        call_command("load_policy", str(bad))

    call_command("load_policy", str(DEMO_MANIFEST))
    assert "already current; nothing changed" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["30", "30x", "d", "-1d", "1.5h", ""])
def test_a_duration_must_be_a_whole_number_and_a_unit(text):
    with pytest.raises(ValueError):
        parse_duration(text)
