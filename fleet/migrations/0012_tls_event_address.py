"""Events record the client's address of the request that caused them."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("fleet", "0011_tls_sealed_keys"),
    ]

    operations = [
        migrations.AddField(
            model_name="event",
            name="address",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
    ]
