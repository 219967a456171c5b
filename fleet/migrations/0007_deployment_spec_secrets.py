"""Every stored spec gets the `secrets` field (empty), so that code reading a revision's
spec, a redeploy or a rollback of a revision made before secrets existed, finds it."""

from django.db import migrations


def add_secrets(apps, schema_editor):
    Deployment = apps.get_model("fleet", "Deployment")
    for deployment in Deployment.objects.all().iterator():
        if "secrets" not in deployment.spec:
            deployment.spec = {**deployment.spec, "secrets": {}}
            deployment.save(update_fields=["spec"])


def drop_empty_secrets(apps, schema_editor):
    Deployment = apps.get_model("fleet", "Deployment")
    for deployment in Deployment.objects.all().iterator():
        if deployment.spec.get("secrets") == {}:
            deployment.spec = {k: v for k, v in deployment.spec.items() if k != "secrets"}
            deployment.save(update_fields=["spec"])


class Migration(migrations.Migration):
    dependencies = [("fleet", "0006_event_kind_user_role")]

    operations = [migrations.RunPython(add_secrets, drop_empty_secrets)]
