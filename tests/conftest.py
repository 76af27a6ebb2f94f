"""The cast, set up once per test database and reused.

Who may do what (the demo policy, policies/manifests/demo.toml):
- alice, bob: reviewers; alice approved most actions, so she may not verify a rollback of them
- vera, victor: verifiers (sign `reviewer_error`)
- carl: customer service (files and signs `customer_request`)
- ines: incident commander (files and signs `incident`)
- paula: policy owner (files `policy_reversal`, signs it with legal)
- lena: legal (files `regulatory_order`, signs it and `policy_reversal`)
- eddie: executive (signs `regulatory_order` and expired windows)
- lex: legal and executive at once (counts once)
- shop, other_shop: integrators (post actions; see only their own)
- audrey: auditor (reads everything, changes nothing)
- nobody: signed in, no role
"""

from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.core.management.commands import flush as flush_command

from audit.models import AuditChainHead
from policies.roles import ROLES
from policies.selectors import current_policy
from policies.services import load_policy

DEMO_MANIFEST = Path(settings.BASE_DIR) / "policies" / "manifests" / "demo.toml"

CAST: dict[str, tuple[str, ...]] = {
    "alice": ("reviewer",),
    "bob": ("reviewer",),
    "vera": ("verifier",),
    "victor": ("verifier",),
    "carl": ("customer_service",),
    "ines": ("incident_commander",),
    "paula": ("policy_owner",),
    "lena": ("legal",),
    "eddie": ("executive",),
    "lex": ("legal", "executive"),
    "shop": ("integrator",),
    "other_shop": ("integrator",),
    "audrey": ("auditor",),
    "nobody": (),
}
PASSWORD = "correct horse battery staple"
TEST_REVERSAL_MODULES = ("tests.integration.handlers", "tests.rollbacks.executing")


def seed() -> None:
    """Groups, the cast and the demo policy: what every test starts from. Idempotent."""
    AuditChainHead.objects.get_or_create(pk=1)
    groups = {role: Group.objects.get_or_create(name=role)[0] for role in ROLES}
    for username, roles in CAST.items():
        user, created = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        if created:
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
            user.groups.set([groups[role] for role in roles])
    load_policy(DEMO_MANIFEST.read_text(), actor="test-setup")


@pytest.fixture(scope="session", autouse=True)
def _fast_hashing_and_secrets() -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The execution tests point the demo policy's python handlers at fakes of their own.
    settings.PYTHON_REVERSAL_MODULES = [*settings.PYTHON_REVERSAL_MODULES, *TEST_REVERSAL_MODULES]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    """API throttles count calls in the cache: each test starts with none counted, so no test is throttled by the
    calls of the tests that ran before it in the same process."""
    cache.clear()


@pytest.fixture(scope="session", autouse=True)
def _audit_flush_allowed() -> None:
    """Transactional tests empty the database after each test; the audit triggers refuse that to anyone but a
    superuser in maintenance mode, which the flush asks for inside its own transaction only."""
    original = flush_command.sql_flush

    def sql_flush(style, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        statements = original(style, connection, *args, **kwargs)
        if connection.vendor == "postgresql":
            statements = ["SET LOCAL rollback_console.audit_maintenance = on", *statements]
        return statements

    flush_command.sql_flush = sql_flush


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        seed()


@pytest.fixture
def cast(db) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    """The named people, by username: `cast.alice`, `cast.vera` ..."""
    users = {user.username: user for user in User.objects.filter(username__in=CAST)}
    if len(users) < len(CAST):  # a transactional test emptied the database before this one
        seed()
        users = {user.username: user for user in User.objects.filter(username__in=CAST)}
    return SimpleNamespace(**users)


@pytest.fixture
def policy(cast):  # type: ignore[no-untyped-def]
    """The current (demo) policy's manifest."""
    return current_policy()[1]
