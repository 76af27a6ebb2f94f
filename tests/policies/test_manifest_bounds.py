"""A manifest's values must fit what the columns and Python hold, and its python handlers the allowlist."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from policies.manifest import ManifestError, parse_duration
from policies.methods.base import ReversalCall
from policies.methods.python import PythonMethod
from policies.models import PolicyVersion
from policies.services import load_policy
from tests.conftest import DEMO_MANIFEST

pytestmark = pytest.mark.django_db


def demo_with(old: str, new: str) -> str:
    text = DEMO_MANIFEST.read_text()
    assert old in text
    return text.replace(old, new, 1).replace('version = "demo-2026-11"', 'version = "bounds"')


def refused(text: str) -> list[str]:
    versions = PolicyVersion.objects.count()
    with pytest.raises(ManifestError) as error:
        load_policy(text, actor="paula")
    assert PolicyVersion.objects.count() == versions
    return error.value.errors


def test_a_window_of_ten_billion_days_is_refused_by_key_path(cast):
    errors = refused(demo_with('window = "30d"', 'window = "9999999999d"'))

    assert errors == ["action_types.\"refund.issue\".window: '9999999999d' is longer than the most allowed, 3660 days"]


@pytest.mark.parametrize("text", ["3661d", "87841h", f"{3661 * 86400}s", "9" * 40 + "s"])
def test_a_duration_longer_than_about_ten_years_is_refused(text):
    with pytest.raises(ValueError, match="longer than the most allowed"):
        parse_duration(text)


def test_a_duration_of_ten_years_is_accepted():
    assert parse_duration("3660d") == timedelta(days=3660)


def test_a_signoff_count_beyond_the_column_is_refused_by_key_path(cast):
    errors = refused(
        demo_with(
            'signoffs = [{ role = "verifier", count = 1 }]', f'signoffs = [{{ role = "verifier", count = {2**70} }}]'
        )
    )

    assert errors == ["triggers.reviewer_error.signoffs[0].count: must be a whole number from 1 to 100"]


def test_a_max_cascade_depth_beyond_the_column_is_refused_by_key_path(cast):
    errors = refused(demo_with("max_cascade_depth = 1", "max_cascade_depth = 40000"))

    assert errors == ["triggers.reviewer_error.max_cascade_depth: must be a whole number from 0 to 1000"]


@pytest.mark.parametrize(
    "nested",
    ["x = " + "[" * 5000 + "]" * 5000, "x = " + "{ a = " * 5000 + "1" + " }" * 5000, "x = " + "[" * 70 + "]" * 70],
)
def test_deeply_nested_toml_is_refused_cleanly(cast, nested):
    errors = refused(DEMO_MANIFEST.read_text() + "\n" + nested + "\n")

    assert errors == ["(file): arrays or tables nested deeper than 64 levels"]


def test_a_python_handler_outside_the_allowed_modules_is_refused_without_importing_it(cast, monkeypatch):
    imported = []
    monkeypatch.setattr("policies.methods.python.import_string", lambda path: imported.append(path))
    text = demo_with('handler = "demo_shop.handlers.restore_benefits"', 'handler = "os.system"')

    errors = refused(text)

    assert errors == [
        'action_types."benefits.reevaluate".reversal.handler: '
        "'os.system' is not under a module in PYTHON_REVERSAL_MODULES (demo_shop.handlers, "
        "tests.integration.handlers, tests.rollbacks.executing)"
    ]
    assert "os.system" not in imported


def test_a_module_whose_name_only_starts_like_an_allowed_one_is_refused(cast, settings):
    settings.PYTHON_REVERSAL_MODULES = ["demo_shop.handlers"]
    text = demo_with('handler = "demo_shop.handlers.restore_benefits"', 'handler = "demo_shop.handlers_evil.run"')

    errors = refused(text)

    assert errors[0].startswith("action_types.\"benefits.reevaluate\".reversal.handler: 'demo_shop.handlers_evil.run'")


def test_the_load_policy_command_names_a_refused_handler(cast, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(demo_with('handler = "demo_shop.handlers.restore_benefits"', 'handler = "subprocess.run"'))

    with pytest.raises(CommandError, match="PYTHON_REVERSAL_MODULES"):
        call_command("load_policy", str(bad))


def test_a_handler_no_longer_allowed_is_not_run_by_a_worker(settings):
    settings.PYTHON_REVERSAL_MODULES = ["somewhere.else"]
    call = ReversalCall(
        phase="check",
        step_id=1,
        rollback_id=1,
        trigger="incident",
        operation="x",
        action={},
        config={"method": "python", "handler": "demo_shop.handlers.restore_benefits"},
    )

    result = PythonMethod().run(call)

    assert (result.status, result.detail) == ("failed", "the handler is not under a module in PYTHON_REVERSAL_MODULES")


def test_a_bad_reminder_or_warning_duration_is_refused_by_key_path(cast):
    text = demo_with('remind_after = "4h"', 'remind_after = "4 hours"').replace(
        'warn_before_window = "48h"', 'warn_before_window = "99999d"'
    )
    errors = refused(text)
    assert errors == [
        "triggers.reviewer_error.remind_after: '4 hours' is not a duration such as 60s, 15m, 12h or 30d",
        "triggers.regulatory_order.warn_before_window: '99999d' is longer than the most allowed, 3660 days",
    ]


def test_the_people_table_takes_only_the_name_of_a_chat_variable(cast):
    errors = refused(
        demo_with(
            'chat_webhook_env = "ROLLBACK_CHAT_WEBHOOK_URL"',
            'chat_webhook_env = "https://chat.example.com/hook"\nchat_url = "x"',
        )
    )
    assert errors == [
        "people.chat_url: unknown key",
        "people.chat_webhook_env: must be the name of an environment variable, such as CHAT_WEBHOOK_URL",
    ]


def test_the_demo_policy_reminds_and_warns_and_names_its_chat(policy):
    assert policy.chat_webhook_env == "ROLLBACK_CHAT_WEBHOOK_URL"
    assert policy.triggers["reviewer_error"].remind_after == timedelta(hours=4)
    assert policy.triggers["regulatory_order"].warn_before_window == timedelta(hours=48)
    assert policy.triggers["customer_request"].warn_before_window == timedelta(hours=24)  # the default
