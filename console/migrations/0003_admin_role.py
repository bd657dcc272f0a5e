"""The admin role: administers the broker (users, permissions, vhosts, policies,
feature flags, definitions) on top of what an operator may do."""

from django.db import migrations

ROLE = "admin"


def create_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=ROLE)


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=ROLE).delete()


class Migration(migrations.Migration):
    dependencies = [("console", "0002_roles")]

    operations = [migrations.RunPython(create_role, remove_role)]
