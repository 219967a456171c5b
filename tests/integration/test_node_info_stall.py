"""A node whose engine answers its pings but not `info` (nor listings) stays ready.

FLEET_NODE_CHECK_TIMEOUT is what this test is about: set to a millisecond, `info`
and listings give up (nearly always) before the engine can answer, as they would
on an engine stalled by hanging pulls, while its pings still answer.
"""

import time

import pytest
from django.conf import settings

from fleet.models import Event, EventKind, Node
from tests.integration.conftest import LOGS, wait_for

pytestmark = pytest.mark.lab


@pytest.fixture
def process_env(process_env):
    return {**process_env, "FLEET_NODE_CHECK_TIMEOUT": "0.001"}


def test_an_engine_that_answers_pings_but_not_info_is_never_unreachable(
    lab, lab_nodes, celery_beat, watch_process
):
    logs = {name: LOGS / f"{name}.log" for name in ("worker", "watch")}
    start = {name: path.stat().st_size for name, path in logs.items()}
    wait_for(
        lambda: set(Node.objects.values_list("status", flat=True)) == {"ready"},
        20,
        message="every node to be ready on its pings alone",
    )
    time.sleep(2 * settings.FLEET_NODE_CHECK_INTERVAL + 1)  # two rounds of beat's checks
    assert set(Node.objects.values_list("status", flat=True)) == {"ready"}
    failed_infos = 0
    for name, path in logs.items():
        with open(path, "rb") as log:
            log.seek(start[name])
            failed_infos += log.read().count(b"no info from")
    assert failed_infos >= 6, f"only {failed_infos} info calls failed"
    changes = Event.objects.filter(kind=EventKind.NODE_STATUS_CHANGED)
    assert sorted(changes.values_list("old", "new")) == [("unknown", "ready")] * 3
