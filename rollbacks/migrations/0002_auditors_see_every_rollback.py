from django.db import migrations


def grant_view(apps, schema_editor):
    """Auditors read everything: the model-level view permission on rollbacks (object permissions cover the
    requester and the signing roles, granted per rollback when it is requested)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="rollbacks", model="rollback")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_rollback", defaults={"name": "Can view rollback"}
    )
    auditor, _ = Group.objects.get_or_create(name="auditor")
    auditor.permissions.add(permission)


def revoke_view(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for group in Group.objects.filter(name="auditor"):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="rollbacks", codename="view_rollback"))


class Migration(migrations.Migration):
    dependencies = [
        ("rollbacks", "0001_initial"),
        ("policies", "0002_role_groups"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(grant_view, revoke_view)]
