from django.db import migrations

ROLES = ("reviewer", "verifier", "customer_service", "incident_commander", "policy_owner", "legal", "executive",
         "integrator", "auditor")


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)


class Migration(migrations.Migration):
    dependencies = [("policies", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
