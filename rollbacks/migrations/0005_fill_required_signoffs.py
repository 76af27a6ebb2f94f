from django.db import migrations

BATCH = 5_000


def fill_required_signoffs(apps, schema_editor):
    """Every rollback filed before the table existed gets the rows of its `required_signoffs` JSON, the list
    request_rollback wrote it from (its roles are already merged, one entry per role)."""
    Rollback = apps.get_model("rollbacks", "Rollback")
    RequiredSignoff = apps.get_model("rollbacks", "RequiredSignoff")
    rows = []
    for rollback_id, required in Rollback.objects.order_by("pk").values_list("pk", "required_signoffs").iterator(
        chunk_size=BATCH
    ):
        rows.extend(RequiredSignoff(rollback_id=rollback_id, role=item["role"], count=item["count"]) for item in required)
        if len(rows) >= BATCH:
            RequiredSignoff.objects.bulk_create(rows)
            rows = []
    RequiredSignoff.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [("rollbacks", "0004_required_signoffs")]

    # Going back drops the table (0004), so there is nothing to undo here.
    operations = [migrations.RunPython(fill_required_signoffs, migrations.RunPython.noop)]
