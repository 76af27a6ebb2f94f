"""`python manage.py demo`: the one-command demo's data, built through the real services, and idempotent."""

import io
import itertools
import json
import stat

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone
from knox.auth import TokenAuthentication

from actions.models import Action, ActionLink
from audit.models import AuditEvent
from demo_shop.models import Customer, PointsGrant, Refund
from demo_shop.people import PEOPLE
from policies.roles import ROLES
from rollbacks.models import Rollback


def run_demo(credentials) -> str:
    out = io.StringIO()
    call_command("demo", credentials=credentials, stdout=out)
    return out.getvalue()


@pytest.fixture
def credentials(tmp_path):
    return tmp_path / "demo-credentials.json"


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (User, Group, Customer, Refund, PointsGrant, Action, ActionLink, Rollback, AuditEvent)
    }


def test_the_demo_people_cover_every_role():
    assert {role for roles in PEOPLE.values() for role in roles} == set(ROLES)


def test_every_demo_person_holds_their_roles_and_logs_in_with_the_printed_password(db, credentials):
    output = run_demo(credentials)
    passwords = json.loads(credentials.read_text())["passwords"]
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    for username, roles in [*PEOPLE.items(), ("admin", ())]:
        user = User.objects.get(username=username)
        assert set(user.groups.values_list("name", flat=True)) == set(roles)
        assert authenticate(username=username, password=passwords[username]) is not None, username
        assert f"{username} " in output and passwords[username] in output
    assert User.objects.get(username="admin").is_superuser


def test_the_demo_prints_a_working_token_for_the_shop(db, credentials):
    output = run_demo(credentials)
    token = json.loads(credentials.read_text())["token"]
    assert output.strip().endswith(token)
    user, _ = TokenAuthentication().authenticate_credentials(token.encode())
    assert user.username == "shop"


def test_the_demo_records_cascade_chains_through_the_shop(db, credentials):
    run_demo(credentials)
    shop = User.objects.get(username="shop")
    actions = {a.external_id: a for a in Action.objects.filter(integrator=shop)}
    chain = ["run-101/refund-1", "run-101/points-1", "run-101/tier-1", "run-101/benefits-1"]
    for upstream, downstream in itertools.pairwise(chain):
        assert ActionLink.objects.filter(upstream=actions[upstream], downstream=actions[downstream]).exists()
    # A reinstatement that re-applied an upgrade closes a cycle in Ben's chain.
    assert ActionLink.objects.filter(
        upstream=actions["run-102/membership-1"], downstream=actions["run-102/tier-1"]
    ).exists()
    assert {a.action_type for a in actions.values()} >= {
        "refund.issue", "loyalty.points_grant", "tier.upgrade", "benefits.reevaluate", "membership.reinstate",
        "email.send", "record.update", "wire.transfer",
    }  # fmt: skip
    assert actions["run-201/wire-1"].reversibility == "irreversible"
    assert actions["run-090/refund-1"].window_ends_at < timezone.now()
    assert (timezone.now() - actions["run-090/refund-1"].executed_at).days >= 40


def test_every_shop_action_has_its_row_in_the_shop_books(db, credentials):
    run_demo(credentials)
    refunds = Action.objects.filter(action_type="refund.issue", integrator__username="shop")
    for action in refunds:
        refund = Refund.objects.get(reference=action.external_id)
        assert refund.customer.subject == action.subject
        assert refund.amount == action.amount
    assert Customer.objects.get(number=1003).status == "closed"
    dana_points = PointsGrant.objects.get(reference="run-104/points-1")
    assert dana_points.customer.points < dana_points.points  # spent: its revocation will be unmet


def test_the_demo_opens_with_requests_waiting_for_sign_off(db, credentials):
    run_demo(credentials)
    waiting = {r.trigger: r for r in Rollback.objects.filter(state="pending_authorization")}
    assert set(waiting) == {"reviewer_error", "customer_request", "incident"}
    assert waiting["incident"].plan["actions"] == 5


def test_running_the_demo_twice_changes_nothing(db, credentials):
    first_output = run_demo(credentials)
    before = counts()
    second_output = run_demo(credentials)
    assert counts() == before
    assert "(0 new this run); 0 rollback requests filed" in second_output
    assert first_output.splitlines()[3:] == second_output.splitlines()[3:]  # the same logins and token


def test_a_password_changed_since_the_last_run_is_replaced_and_printed_anew(db, credentials):
    run_demo(credentials)
    before = json.loads(credentials.read_text())["passwords"]
    vera = User.objects.get(username="vera")
    vera.set_password("changed in the admin")
    vera.save()
    run_demo(credentials)
    after = json.loads(credentials.read_text())["passwords"]
    assert after["vera"] != before["vera"]
    assert authenticate(username="vera", password=after["vera"]) is not None
    assert {name: p for name, p in after.items() if name != "vera"} == {
        name: p for name, p in before.items() if name != "vera"
    }


def test_the_demo_prints_how_to_connect_an_agent_over_mcp_with_the_shops_token(db, credentials):
    output = run_demo(credentials)
    token = json.loads(credentials.read_text())["token"]
    assert f"ROLLBACK_CONSOLE_TOKEN={token} " in output
    assert "manage.py mcp_server" in output
    assert "rollback_console.asgi:application" in output
    assert "http://127.0.0.1:8002/mcp/" in output
