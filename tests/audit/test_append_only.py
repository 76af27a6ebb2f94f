import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent, AuditLink
from audit.services import link_rollback
from tests.audit.conftest import record


def _refused(sql: str, params: tuple = ()) -> None:
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_the_database_refuses_to_update_an_audit_event(cast):
    event = record(1)[0]
    _refused("UPDATE audit_auditevent SET actor = 'mallory' WHERE seq = %s", (event.seq,))
    assert AuditEvent.objects.get(seq=event.seq).actor == "shop"


def test_the_database_refuses_to_delete_an_audit_event(cast):
    event = record(1)[0]
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", (event.seq,))
    assert AuditEvent.objects.filter(seq=event.seq).exists()


def test_the_database_refuses_to_delete_an_audit_link(cast):
    with transaction.atomic():
        link_rollback(7, [1, 2])
    _refused("DELETE FROM audit_auditlink WHERE rollback_id = 7")


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
@pytest.mark.database_owner
def test_the_database_refuses_to_truncate_the_trail_even_to_its_owner(cast):
    """The application role lacks the TRUNCATE privilege anyway (below); the trigger stops the owner too."""
    record(1)
    _refused("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
@pytest.mark.database_owner
def test_replica_mode_does_not_silence_the_triggers(cast):
    event = record(1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", (event.seq,))


ATTEMPTS = [
    "UPDATE audit_auditevent SET actor = 'mallory'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "SET LOCAL rollback_console.audit_maintenance = on; DELETE FROM audit_auditevent",
    "SET LOCAL rollback_console.audit_maintenance = on; TRUNCATE audit_auditevent",
    "SET LOCAL rollback_console.audit_maintenance = on; UPDATE audit_auditevent SET actor = 'mallory'",
    "DELETE FROM audit_auditlink",
    "TRUNCATE audit_auditlink",
    "UPDATE audit_auditchainhead SET seq = 0",
    "TRUNCATE audit_auditchainhead",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_change",
    "ALTER TABLE audit_auditchainhead DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_auditevent_no_change ON audit_auditevent",
    "DROP FUNCTION audit_refuse_change() CASCADE",
    "CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'",
    "SET LOCAL session_replication_role = replica",
    "ALTER ROLE CURRENT_USER SUPERUSER",
]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="roles and ENABLE ALWAYS triggers are PostgreSQL's")
def test_the_suite_connects_as_a_role_that_is_no_superuser_and_owns_no_table(cast):
    """What compose does (deploy/postgres-init.sh): the tests below prove the trail against that role."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert cursor.fetchone() == (False, False)
        cursor.execute("SELECT count(*) FROM pg_class WHERE pg_get_userbyid(relowner) = current_user")
        assert cursor.fetchone() == (0,)


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="roles and ENABLE ALWAYS triggers are PostgreSQL's")
@pytest.mark.parametrize("attempt", ATTEMPTS)
def test_the_application_role_cannot_get_around_the_append_only_triggers(cast, attempt):
    record(3)
    with transaction.atomic():
        link_rollback(7, [1, 2])
    events_before = list(AuditEvent.objects.order_by("seq").values_list("seq", "actor", "hash"))
    with pytest.raises(DatabaseError) as refused, transaction.atomic(), connection.cursor() as cursor:
        for statement in attempt.split("; "):
            cursor.execute(statement)
    assert isinstance(refused.value.__cause__, psycopg.errors.InsufficientPrivilege)
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "actor", "hash")) == events_before
    assert AuditLink.objects.filter(rollback_id=7).count() == 2


def test_the_chain_head_only_moves_forward(cast):
    record(2)
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(), connection.cursor() as c:
        c.execute("UPDATE audit_auditchainhead SET seq = seq - 1")
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(), connection.cursor() as c:
        c.execute("DELETE FROM audit_auditchainhead")
    assert record(1)[0].seq >= 3  # appending still moves it on
