"""SQLite, the default database, holds up while several processes write at once."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import django, sys
django.setup()
from django.db import transaction
from django.utils import timezone
from fleet.nodes.health import record_ping
from fleet.models import Event, EventKind, Node

node_id = Node.objects.get(name="shared").pk
for i in range(int(sys.argv[1])):
    # The same shapes of write the real processes make: a locked node update, an event.
    record_ping(node_id, timezone.now(), "" if i % 2 else "boom")
    with transaction.atomic():
        Event.objects.record(EventKind.NODE_UPDATED, node="shared", reason=sys.argv[2])
print("done")
"""


def run(args, env, **kwargs):
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, **kwargs
    )


def test_four_processes_write_to_sqlite_at_once_without_locking_errors(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'smoke.sqlite3'}"}
    migrated = run(["manage.py", "migrate", "--noinput"], env, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    create = "import django; django.setup(); from fleet.models import Node; "
    create += "Node.objects.create(name='shared', endpoint='tcp://127.0.0.1:1')"
    assert run(["-c", create], env, timeout=60).returncode == 0

    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, "150", f"writer-{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outcomes = [proc.communicate(timeout=180) for proc in writers]
    for proc, (out, err) in zip(writers, outcomes, strict=True):
        assert proc.returncode == 0, err
        assert "database is locked" not in err
        assert out.strip() == "done"

    count = "import django; django.setup(); from fleet.models import Event; "
    count += "print(Event.objects.filter(kind='node.updated').count())"
    counted = run(["-c", count], env, timeout=60)
    assert counted.stdout.strip() == str(4 * 150)
