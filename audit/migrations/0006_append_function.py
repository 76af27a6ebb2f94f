"""One round trip per append on PostgreSQL: `audit_append` locks the chain head, hashes and inserts the events and
moves the head, in the caller's transaction.

It changes no guarantee: it runs as the caller (no SECURITY DEFINER), so the triggers of 0002 and 0003 still
refuse UPDATE, DELETE and TRUNCATE of events and any move of the head but forward; the head's row lock still
serializes appends. The hashed bytes are built as audit/chain.py builds them, from parts the writer sends
(actor and kind already JSON-escaped, ids as JSON tokens); the writer recomputes the chain in Python and compares
the new head's hash, so a disagreement aborts the transaction instead of storing a chain that does not verify.
"""

from django.db import migrations

POSTGRES = """
CREATE OR REPLACE FUNCTION audit_append(
    p_at timestamptz, p_at_text text, p_actors text[], p_actor_json text[], p_kinds text[], p_kind_json text[],
    p_action_ids bigint[], p_rollback_ids bigint[], p_datas text[]
) RETURNS TABLE (old_seq bigint, old_hash varchar, new_hash varchar) LANGUAGE plpgsql AS $$
DECLARE
    n integer := cardinality(p_kinds);
    head_seq bigint;
    head_hash varchar;
    current_hash varchar;
    seqs bigint[] := '{}';
    prevs varchar[] := '{}';
    hashes varchar[] := '{}';
BEGIN
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_auditchainhead h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit chain head row is missing';
    END IF;
    current_hash := head_hash;
    FOR i IN 1..n LOOP
        prevs[i] := current_hash;
        seqs[i] := head_seq + i;
        current_hash := encode(sha256(convert_to(
            '{"action":' || coalesce(p_action_ids[i]::text, 'null')
            || ',"actor":' || p_actor_json[i]
            || ',"at":"' || p_at_text
            || '","data":' || p_datas[i]
            || ',"kind":' || p_kind_json[i]
            || ',"prev_hash":"' || prevs[i]
            || '","rollback":' || coalesce(p_rollback_ids[i]::text, 'null')
            || ',"seq":' || seqs[i]::text || '}',
            'UTF8')), 'hex');
        hashes[i] := current_hash;
    END LOOP;
    INSERT INTO audit_auditevent (seq, at, actor, kind, action_id, rollback_id, data, prev_hash, hash)
        SELECT e.seq, p_at, e.actor, e.kind, e.action_id, e.rollback_id, e.data, e.prev_hash, e.hash
        FROM unnest(seqs, p_actors, p_kinds, p_action_ids, p_rollback_ids, p_datas, prevs, hashes)
            AS e(seq, actor, kind, action_id, rollback_id, data, prev_hash, hash);
    UPDATE audit_auditchainhead SET seq = head_seq + n, hash = current_hash WHERE id = 1;
    old_seq := head_seq;
    old_hash := head_hash;
    new_hash := current_hash;
    RETURN NEXT;
END
$$;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES, params=None)


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS audit_append(timestamptz, text, text[], text[], text[], text[], bigint[], bigint[], text[]);"
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_access_failure_tally")]

    operations = [migrations.RunPython(install, remove)]
