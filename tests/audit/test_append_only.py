import os

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
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
def test_the_database_refuses_to_truncate_the_trail(cast):
    record(1)
    _refused("TRUNCATE audit_auditevent")
    assert AuditEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
def test_replica_mode_does_not_silence_the_triggers(cast):
    event = record(1)[0]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
    _refused("DELETE FROM audit_auditevent WHERE seq = %s", (event.seq,))


@pytest.fixture
def application_role(db):  # type: ignore[no-untyped-def]
    """A throwaway login role that is not a superuser and does not own the tables, with every table privilege on
    the trail: what stops it must be the triggers, not a missing GRANT."""
    name = f"rc_audit_app_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {name}")
        cursor.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        cursor.execute(f"GRANT ALL PRIVILEGES ON audit_auditevent, audit_auditlink, audit_auditchainhead TO {name}")
    settings = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"], user=name, host=settings["HOST"] or None, port=str(settings["PORT"] or "") or None
    )
    yield conninfo
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {name}")
        cursor.execute(f"DROP ROLE {name}")


ATTEMPTS = [
    "UPDATE audit_auditevent SET actor = 'mallory'",
    "DELETE FROM audit_auditevent",
    "TRUNCATE audit_auditevent",
    "SET rollback_console.audit_maintenance = on; DELETE FROM audit_auditevent",
    "SET rollback_console.audit_maintenance = on; TRUNCATE audit_auditevent",
    "SET rollback_console.audit_maintenance = on; UPDATE audit_auditevent SET actor = 'mallory'",
    "DELETE FROM audit_auditlink",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL",
    "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_change",
    "DROP TRIGGER audit_auditevent_no_change ON audit_auditevent",
    "SET session_replication_role = replica",
]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="roles and ENABLE ALWAYS triggers are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_an_application_role_cannot_get_around_the_append_only_triggers(cast, application_role):
    record(3)
    with transaction.atomic():
        link_rollback(7, [1, 2])
    events_before = AuditEvent.objects.count()
    with psycopg.connect(application_role) as app:
        for attempt in ATTEMPTS:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                for statement in attempt.split("; "):
                    app.execute(statement)
                pytest.fail(f"the application role could: {attempt}")
            app.rollback()
        # What the application needs still works for it: reading the trail.
        assert app.execute("SELECT count(*) FROM audit_auditevent").fetchone()[0] == events_before
    assert AuditEvent.objects.count() == events_before
    assert not AuditEvent.objects.filter(actor="mallory").exists()


def test_the_chain_head_only_moves_forward(cast):
    record(2)
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(), connection.cursor() as c:
        c.execute("UPDATE audit_auditchainhead SET seq = seq - 1")
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic(), connection.cursor() as c:
        c.execute("DELETE FROM audit_auditchainhead")
    assert record(1)[0].seq >= 3  # appending still moves it on
