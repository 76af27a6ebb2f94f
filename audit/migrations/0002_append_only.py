"""The database itself refuses to change or remove audit rows.

On PostgreSQL the triggers are ENABLE ALWAYS, so `session_replication_role = replica` does not silence them,
and only the tables' owner can disable them: the application should connect as a role that does not own them.
The one way through is for a superuser (who could drop the triggers anyway) to set
`rollback_console.audit_maintenance = on` in their session: the test suite does that to empty its database.
"""

from django.db import migrations

TABLES = ("audit_auditevent", "audit_auditlink")

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rollback_console.audit_maintenance', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def postgres_triggers(table: str) -> str:
    return f"""
    CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change;
    ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate;
    """


def sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: UPDATE on {table} refused'); END;",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only: DELETE on {table} refused'); END;",
    ]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FUNCTION, params=None)
        for table in TABLES:
            schema_editor.execute(postgres_triggers(table))
    elif schema_editor.connection.vendor == "sqlite":
        for table in TABLES:
            for statement in sqlite_triggers(table):
                schema_editor.execute(statement)


def remove(apps, schema_editor):
    for table in TABLES:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_change ON {table};")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update;")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete;")


def create_chain_head(apps, schema_editor):
    apps.get_model("audit", "AuditChainHead").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(install, remove),
        migrations.RunPython(create_chain_head, migrations.RunPython.noop),
    ]
