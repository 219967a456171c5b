"""Hostile values posted to the alert channel forms (the page's and the admin's): an answer
below 500, and a refused form changes no row."""

import pytest
from django.db import transaction
from hypothesis import given

from fleet.models import AlertChannel, Event
from tests.integration.test_hostile_forms import HYPOTHESIS, fields

pytestmark = pytest.mark.django_db

# A closed port on 127.0.0.1: nothing is sent in these tests, and nothing could go far.
CHANNEL = {"name": "ops", "url": "json://127.0.0.1:9/hook", "events": "node.down", "enabled": "on"}


def rows():
    return (
        list(AlertChannel.objects.order_by("pk").values()),
        list(Event.objects.order_by("pk").values()),
    )


def post_and_check(client, url, data):
    with transaction.atomic():
        before = rows()
        response = client.post(url, data)
        after = rows()
        transaction.set_rollback(True)
    assert response.status_code < 500, (url, data)
    if response.status_code != 302:
        assert after == before, (url, data, "refused but changed rows")


@pytest.fixture
def channel(db):
    return AlertChannel.objects.create(name="existing", url="json://127.0.0.1:9/x")


@HYPOTHESIS
@given(data=fields(CHANNEL))
def test_the_channel_forms_survive_hostile_values(admin_client, channel, data):
    for url in (
        "/alerts/channels/",
        f"/alerts/channels/{channel.pk}/",
        "/admin/fleet/alertchannel/add/",
        f"/admin/fleet/alertchannel/{channel.pk}/change/",
    ):
        post_and_check(admin_client, url, data)
