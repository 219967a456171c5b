"""Nodes' TLS keys sealed at rest, and certificates checked as certificates.

Keys stored in the clear before this are sealed here: the field seals whatever it
writes and passes a sealed value through, so loading and writing each key is enough.
"""

from django.db import migrations, models
from django.db.models import Value

import fleet.access.sealing
import fleet.models.validation


def seal_keys(apps, schema_editor):
    Node = apps.get_model("fleet", "Node")
    for pk, key in Node.objects.exclude(tls_key="").values_list("pk", "tls_key"):
        Node.objects.filter(pk=pk).update(tls_key=key)


def open_keys(apps, schema_editor):
    Node = apps.get_model("fleet", "Node")
    for pk, key in Node.objects.exclude(tls_key="").values_list("pk", "tls_key"):
        # A plain TextField value, so that the sealed field does not seal it again.
        Node.objects.filter(pk=pk).update(tls_key=Value(key, output_field=models.TextField()))


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0009_node_liveness"),
    ]

    operations = [
        migrations.AlterField(
            model_name="node",
            name="tls_ca",
            field=models.TextField(
                blank=True,
                validators=[fleet.models.validation.validate_certificate],
                verbose_name="TLS CA certificate",
            ),
        ),
        migrations.AlterField(
            model_name="node",
            name="tls_cert",
            field=models.TextField(
                blank=True,
                validators=[fleet.models.validation.validate_certificate],
                verbose_name="TLS client certificate",
            ),
        ),
        migrations.AlterField(
            model_name="node",
            name="tls_key",
            field=fleet.access.sealing.SealedTextField(
                blank=True,
                validators=[fleet.models.validation.validate_private_key],
                verbose_name="TLS client key",
            ),
        ),
        migrations.RunPython(seal_keys, open_keys),
    ]
