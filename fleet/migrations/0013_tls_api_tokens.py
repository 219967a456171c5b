"""API tokens stored as hashes (django-rest-knox), named, optionally expiring.

Tokens of DRF's authtoken app, which kept them in the clear (and showed them to admins),
carry over hashed: each goes on working, under the name "from before hashing"; the old
table is dropped with the plain keys in it. There is no way back to plain keys.
"""

import datetime
import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from knox.crypto import hash_token
from knox.settings import CONSTANTS

LEGACY = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("fleet", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {LEGACY}")
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        ApiToken.objects.create(
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            user_id=user_id,
            id=uuid.uuid4(),
            name="from before hashing",
        )
        if isinstance(created, str):  # SQLite hands back text
            created = parse_datetime(created)
        if timezone.is_naive(created):
            created = timezone.make_aware(created, datetime.UTC)
        ApiToken.objects.filter(digest=hash_token(key)).update(created=created)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {LEGACY}")
        # So that the app, were it installed again, would make its table afresh.
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):

    dependencies = [
        ('fleet', '0012_tls_event_address'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name='event',
            name='kind',
            field=models.CharField(choices=[('node.registered', 'Node Registered'), ('node.updated', 'Node Updated'), ('node.removed', 'Node Removed'), ('node.status_changed', 'Node Status Changed'), ('node.availability_changed', 'Node Availability Changed'), ('service.created', 'Service Created'), ('service.scaled', 'Service Scaled'), ('service.deleted', 'Service Deleted'), ('deployment.created', 'Deployment Created'), ('deployment.succeeded', 'Deployment Succeeded'), ('deployment.failed', 'Deployment Failed'), ('deployment.rolled_back', 'Deployment Rolled Back'), ('replica.started', 'Replica Started'), ('replica.died', 'Replica Died'), ('replica.unhealthy', 'Replica Unhealthy'), ('replica.rescheduled', 'Replica Rescheduled'), ('replica.crash_looping', 'Replica Crash Looping'), ('replica.removed', 'Replica Removed'), ('replica.restart_requested', 'Replica Restart Requested'), ('placement.failed', 'Placement Failed'), ('user.role_changed', 'User Role Changed'), ('user.token_created', 'User Token Created'), ('user.token_revoked', 'User Token Revoked')], db_index=True, max_length=64),
        ),
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("expiry", models.DateTimeField(blank=True, null=True)),
                (
                    "id",
                    models.UUIDField(
                        default=uuid.uuid4, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("digest", models.CharField(max_length=128, unique=True)),
                ("name", models.CharField(max_length=64)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "API token",
                "ordering": ["-created"],
            },
        ),
        migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop),
    ]
