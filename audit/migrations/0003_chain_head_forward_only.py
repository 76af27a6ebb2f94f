"""The chain head only moves forward: nobody can move it back to hide a cut-off tail or delete it.

Same escape hatch as the trail's own triggers: a superuser in maintenance mode (the test suite's flush).
"""

from django.db import migrations

POSTGRES = """
CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('rollback_console.audit_maintenance', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq > OLD.seq THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit chain head only moves forward: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_auditchainhead_forward BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_auditchainhead_no_truncate BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();
ALTER TABLE audit_auditchainhead ENABLE ALWAYS TRIGGER audit_auditchainhead_forward;
ALTER TABLE audit_auditchainhead ENABLE ALWAYS TRIGGER audit_auditchainhead_no_truncate;
"""

SQLITE = [
    "CREATE TRIGGER audit_auditchainhead_forward BEFORE UPDATE ON audit_auditchainhead "
    "WHEN NEW.seq <= OLD.seq OR NEW.id != OLD.id "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END;",
    "CREATE TRIGGER audit_auditchainhead_no_delete BEFORE DELETE ON audit_auditchainhead "
    "BEGIN SELECT RAISE(ABORT, 'the audit chain head only moves forward'); END;",
]


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE:
            schema_editor.execute(statement)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditchainhead_forward ON audit_auditchainhead;")
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditchainhead_no_truncate ON audit_auditchainhead;")
    else:
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditchainhead_forward;")
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_auditchainhead_no_delete;")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only")]

    operations = [migrations.RunPython(install, remove)]
