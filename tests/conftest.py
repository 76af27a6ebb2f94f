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

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.core.management.commands import flush as flush_command
from django.db import connection
from django.db.backends.postgresql.operations import DatabaseOperations as PostgresOperations
from psycopg import sql

from audit.models import AuditChainHead
from policies.roles import ROLES
from policies.selectors import current_policy
from policies.services import load_policy
from rollbacks import tasks

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
    # Each test process keeps its own circuit files (SQLite test databases of two processes share a name).
    settings.CIRCUITS_DIR = tempfile.mkdtemp(prefix="rc-circuits-")


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    """API throttles count calls in the cache: each test starts with none counted, so no test is throttled by the
    calls of the tests that ran before it in the same process."""
    cache.clear()


@pytest.fixture(autouse=True)
def announcements_queued(monkeypatch) -> SimpleNamespace:  # type: ignore[no-untyped-def]
    """Announcing is queued after commit (rollbacks.dispatch) by every transition that opens an inbox item: the
    tests record it here instead of reaching a broker, and tests/rollbacks/test_announcements.py runs it."""
    queued = SimpleNamespace(runs=[], deliveries=[])
    # On the task objects, not on the proxies shared_task returns: a test that builds another Celery app (a real
    # worker's) makes the proxies point elsewhere before this is undone.
    announce, send = (
        task._get_current_object() for task in (tasks.announce_inbox_items_task, tasks.send_announcement_task)
    )
    monkeypatch.setattr(announce, "delay", lambda: queued.runs.append(1))
    monkeypatch.setattr(send, "delay", queued.deliveries.append)
    return queued


@pytest.fixture(scope="session", autouse=True)
def _audit_flush_allowed() -> None:
    """Transactional tests empty the database after each test; the audit triggers refuse that to anyone but a
    superuser in maintenance mode, which the flush asks for inside its own transaction only. On PostgreSQL the
    tests connect as the application role, which may not TRUNCATE at all: the flush runs as the tables' owner."""
    original = flush_command.sql_flush

    def sql_flush(style, connection, *args, **kwargs):  # type: ignore[no-untyped-def]
        statements = original(style, connection, *args, **kwargs)
        if connection.vendor == "postgresql":
            statements = ["SET LOCAL rollback_console.audit_maintenance = on", *statements]
        return statements

    flush_command.sql_flush = sql_flush

    original_execute = PostgresOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):  # type: ignore[no-untyped-def]
        if self.connection.settings_dict["USER"] != database_roles.application:
            return original_execute(self, sql_list)
        # A real worker of an integration test may still be committing its last write when the test's flush
        # truncates: PostgreSQL then picks one of the two as a deadlock's victim. The flush waits and tries again.
        for attempt in range(5):
            try:
                with database_roles.owner_connection() as owner, owner.transaction():
                    for statement in sql_list:
                        owner.execute(statement)
                return None
            except psycopg.errors.DeadlockDetected:
                if attempt == 4:
                    raise
                time.sleep(0.5)
        return None

    PostgresOperations.execute_sql_flush = execute_sql_flush


# deploy/postgres-init.sh, statement for statement (tests/security/test_database_role.py keeps them equal).
APPLICATION_ROLE_SQL = (
    "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE",
    "GRANT CONNECT ON DATABASE {database} TO {role}",
    "GRANT USAGE ON SCHEMA public TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}",
)
# Compose grants by default privileges before `migrate` creates the tables; in the tests the tables exist already.
EXISTING_TABLES_SQL = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
)


class DatabaseRoles:
    """Who the PostgreSQL suite connects as. Compose migrates as the tables' owner and serves as `rollback_app`,
    a role that owns nothing (deploy/postgres-init.sh): the tests do the same, so the append-only trail is proven
    against the role production uses, not a superuser. The role is made per test database (roles are shared by
    the whole cluster, test databases are one per xdist worker) and dropped with it."""

    def __init__(self) -> None:
        self.owner: dict = {}
        self.application = ""

    def owner_connection(self) -> psycopg.Connection:
        """A new connection to the test database as its owner (a superuser in CI, as in compose)."""
        return psycopg.connect(**self._conninfo(self.owner), autocommit=True)

    @staticmethod
    def _conninfo(settings_dict: dict) -> dict:
        return {
            "dbname": settings_dict["NAME"],
            "user": settings_dict["USER"],
            "password": settings_dict["PASSWORD"] or None,
            "host": settings_dict["HOST"] or None,
            "port": settings_dict["PORT"] or None,
        }

    def create_application_role(self) -> None:
        """The role and its grants, as deploy/postgres-init.sh makes them, on the freshly migrated database."""
        self.owner = dict(connection.settings_dict)
        self.application = f"{self.owner['NAME']}_app"
        role, owner_role = sql.Identifier(self.application), sql.Identifier(self.owner["USER"])
        with self.owner_connection() as owner:
            owner.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))  # left over by a killed run
            for statement in (*APPLICATION_ROLE_SQL, *EXISTING_TABLES_SQL):
                owner.execute(
                    sql.SQL(statement).format(role=role, owner=owner_role, database=sql.Identifier(self.owner["NAME"]))
                )

    def drop_application_role(self) -> None:
        self.connect_as(self.owner["USER"])
        with self.owner_connection() as owner:
            owner.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(self.application)))
            owner.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(self.application)))

    def connect_as(self, user: str) -> None:
        """Point the default alias at `user`; the next query opens a new connection."""
        if connection.settings_dict["USER"] != user:
            connection.close()
            connection.settings_dict["USER"] = user
            connection.settings_dict["PASSWORD"] = self.owner["PASSWORD"] if user == self.owner["USER"] else ""


database_roles = DatabaseRoles()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):  # type: ignore[no-untyped-def]
    """Migrated as the owner (pytest-django's own fixture), then used as the application role on PostgreSQL."""
    postgres = connection.vendor == "postgresql"
    with django_db_blocker.unblock():
        if postgres:
            database_roles.create_application_role()
            database_roles.connect_as(database_roles.application)
        seed()
    yield
    if postgres:
        with django_db_blocker.unblock():
            database_roles.drop_application_role()


@pytest.fixture
def _database_role(request, django_db_setup):  # type: ignore[no-untyped-def]
    """Tests marked `database_owner` (they play a superuser who tampers with the trail) connect as the owner;
    every other test as the application role."""
    if connection.vendor != "postgresql" or not request.node.get_closest_marker("database_owner"):
        yield
        return
    database_roles.connect_as(database_roles.owner["USER"])
    yield
    database_roles.connect_as(database_roles.application)


@pytest.fixture
def _django_db_helper(_database_role, _django_db_helper):  # type: ignore[no-untyped-def]
    """pytest-django's fixture behind `db` and `transactional_db`, after the role is chosen: the test's
    transaction must be opened on the connection the test will use."""
    yield


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


@pytest.fixture(autouse=True)
def _closed_circuits(django_db_setup) -> None:  # type: ignore[no-untyped-def]
    """Integrators' circuits live outside the database (Redis, or files beside the embedded broker): each test
    starts with every circuit closed and no failures counted by the tests before it."""
    from rollbacks.circuits import reset_circuits

    reset_circuits()  # after the test database exists: the circuits' keys carry its name
