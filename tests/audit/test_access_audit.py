"""Changes of access are audited (`access.*`): who holds which role or permission, users created, deactivated or
made staff, password changes, failed and locked-out logins on the console's and the admin's forms. The password
reset flow is off unless configured."""

from datetime import timedelta
from typing import Any
from unittest import mock

import orjson
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from audit.access import flush_access_failures
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def access_events(kind: str, after: int = 0) -> list[tuple[str, dict[str, Any]]]:
    rows = AuditEvent.objects.filter(kind=kind, seq__gt=after).order_by("seq")
    return [(event.actor, orjson.loads(event.data)) for event in rows]


def last_seq() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.fixture
def ops(db) -> Client:  # type: ignore[no-untyped-def]
    user = User.objects.create_superuser("ops", "ops@example.com", "x")
    client = Client()
    client.force_login(user)
    return client


def test_adding_a_person_to_verifier_in_the_admin_is_audited_with_who_did_it(cast, ops):
    url = reverse("admin:auth_user_change", args=[cast.carl.pk])
    ops.get(url)
    start = last_seq()
    groups = [Group.objects.get(name="customer_service").pk, Group.objects.get(name="verifier").pk]
    response = ops.post(
        url,
        {
            "username": "carl",
            "email": "carl@example.com",
            "is_active": "on",
            "groups": groups,
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    assert ("ops", {"user": "carl", "added": ["verifier"]}) in access_events("access.groups_changed", start)


def test_role_changes_from_either_side_and_clears_are_audited_as_system_outside_a_request(cast):
    verifier = Group.objects.get(name="verifier")
    start = last_seq()

    cast.nobody.groups.add(verifier)
    verifier.user_set.remove(cast.nobody)
    cast.carl.groups.clear()

    assert access_events("access.groups_changed", start) == [
        ("system", {"user": "nobody", "added": ["verifier"]}),
        ("system", {"user": "nobody", "removed": ["verifier"]}),
        ("system", {"user": "carl", "removed": ["customer_service"]}),
    ]


def test_a_role_change_that_is_rolled_back_leaves_no_event(cast):
    start = last_seq()
    with pytest.raises(RuntimeError), transaction.atomic():
        cast.nobody.groups.add(Group.objects.get(name="auditor"))
        raise RuntimeError("the change fails after the add")

    assert not cast.nobody.groups.exists()
    assert access_events("access.groups_changed", start) == []


def test_permissions_given_to_a_user_or_a_group_are_audited(cast):
    permission = Permission.objects.get(codename="view_rollback")
    start = last_seq()

    cast.nobody.user_permissions.add(permission)
    Group.objects.get(name="reviewer").permissions.add(permission)

    assert access_events("access.permissions_changed", start) == [
        ("system", {"user": "nobody", "added": ["rollbacks.view_rollback"]})
    ]
    assert access_events("access.group_permissions_changed", start) == [
        ("system", {"group": "reviewer", "added": ["rollbacks.view_rollback"]})
    ]


def test_users_created_deactivated_made_staff_and_given_a_new_password_are_audited(cast):
    start = last_seq()

    user = User.objects.create_user("newbie", password="first password")
    user = User.objects.get(pk=user.pk)
    user.is_active = False
    user.is_staff = True
    user.save()
    user.set_password("second password")
    user.save(update_fields=["password"])
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

    assert access_events("access.user_created", start) == [
        ("system", {"user": "newbie", "is_active": True, "is_staff": False, "is_superuser": False})
    ]
    assert access_events("access.user_changed", start) == [
        (
            "system",
            {"user": "newbie", "is_active": {"from": True, "to": False}, "is_staff": {"from": False, "to": True}},
        )
    ]
    assert access_events("access.password_changed", start) == [("system", {"user": "newbie", "usable": True})]
    assert "first password" not in str(access_events("access.user_created", start))


def login(client: Client, path: str, username: str, password: str) -> Any:
    client.get(path)
    return client.post(path, {"username": username, "password": password})


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_a_failed_login_on_the_console_or_the_admin_is_audited(cast, path):
    start = last_seq()

    response = login(Client(REMOTE_ADDR="203.0.113.5"), path, "vera", "wrong")

    assert response.status_code == 200
    assert access_events("access.login_failed", start) == [
        ("anonymous", {"username": "vera", "address": "203.0.113.5", "path": path})
    ]


def test_an_address_that_keeps_failing_is_locked_out_audited_once_and_then_only_counted(cast, settings):
    from tests.conftest import PASSWORD

    client = Client(REMOTE_ADDR="203.0.113.6")
    start = last_seq()
    moment = timezone.now().replace(second=10)  # one minute for every attempt, however slow the machine
    with mock.patch("django.utils.timezone.now", return_value=moment):
        for n in range(settings.AXES_FAILURE_LIMIT):
            login(client, "/accounts/login/", f"guess{n}", "wrong")
        refused = [login(client, "/accounts/login/", "vera", PASSWORD) for _ in range(5)]

    assert {response.status_code for response in refused} == {429}, "even the right password, while locked out"
    assert len(access_events("access.login_failed", start)) == settings.AXES_FAILURE_LIMIT
    assert access_events("access.locked_out", start) == [
        ("anonymous", {"username": f"guess{settings.AXES_FAILURE_LIMIT - 1}", "address": "203.0.113.6"})
    ]
    flush_access_failures(now=moment + timedelta(minutes=2))
    [(_, refusals)] = access_events("access.login_refused", start)
    assert (refusals["address"], refusals["count"]) == ("203.0.113.6", 5)
    assert login(Client(REMOTE_ADDR="198.51.100.2"), "/accounts/login/", "vera", PASSWORD).status_code == 302


def test_the_password_reset_flow_is_off_unless_configured(cast):
    with pytest.raises(NoReverseMatch):
        reverse("password_reset")
    assert Client().get("/accounts/password_reset/").status_code == 404
    assert Client().get("/accounts/reset/MQ/set-password/").status_code == 404


def test_the_password_reset_flow_is_served_once_configured(settings):
    import importlib

    from django.urls import clear_url_caches

    import rollback_console.urls

    settings.PASSWORD_RESET_ENABLED = True
    try:
        importlib.reload(rollback_console.urls)
        clear_url_caches()
        assert reverse("password_reset") == "/accounts/password_reset/"
        assert reverse("login") == "/accounts/login/"
    finally:
        settings.PASSWORD_RESET_ENABLED = False
        importlib.reload(rollback_console.urls)
        clear_url_caches()
    with pytest.raises(NoReverseMatch):
        reverse("password_reset")


def test_permissions_changed_from_the_permissions_side_or_cleared_are_audited(cast):
    permission = Permission.objects.get(codename="view_rollback")
    reviewer = Group.objects.get(name="reviewer")
    start = last_seq()

    permission.user_set.add(cast.nobody)
    permission.group_set.add(reviewer)
    cast.nobody.user_permissions.clear()
    reviewer.permissions.remove(permission)

    assert access_events("access.permissions_changed", start) == [
        ("system", {"user": "nobody", "added": ["rollbacks.view_rollback"]}),
        ("system", {"user": "nobody", "removed": ["rollbacks.view_rollback"]}),
    ]
    assert access_events("access.group_permissions_changed", start) == [
        ("system", {"group": "reviewer", "added": ["rollbacks.view_rollback"]}),
        ("system", {"group": "reviewer", "removed": ["rollbacks.view_rollback"]}),
    ]
