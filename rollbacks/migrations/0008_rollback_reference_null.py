from django.db import migrations, models


def empty_to_null(apps, schema_editor):
    """Rollbacks filed without a reference stored ""; the contract says such a reference is null."""
    apps.get_model("rollbacks", "Rollback").objects.filter(reference="").update(reference=None)


def null_to_empty(apps, schema_editor):
    apps.get_model("rollbacks", "Rollback").objects.filter(reference=None).update(reference="")


class Migration(migrations.Migration):
    dependencies = [
        ("rollbacks", "0007_rollback_window_closes_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="rollback",
            name="reference",
            field=models.CharField(blank=True, default=None, max_length=200, null=True),
        ),
        migrations.RunPython(empty_to_null, null_to_empty, elidable=True),
    ]
