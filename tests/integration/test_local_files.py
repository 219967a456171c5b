"""What Fleet keeps on its own machine is its owner's alone: var/ (the secret key, the
admin's first password, the Redis password, the SQLite database and its sessions) is 0700,
the database 0600, and every Redis that make run, the tests or the benchmarks start asks
for a password and listens on 127.0.0.1 only."""

import os
import stat
import subprocess
import sys

import pytest
import redis

from tests.processes import ROOT

VAR = ROOT / "var"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def fleet_env(**changes):
    env = {k: v for k, v in os.environ.items() if k not in changes}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


def test_var_and_a_new_sqlite_database_are_readable_by_their_owner_only(tmp_path):
    VAR.chmod(0o755)  # as a checkout made with the usual umask leaves it
    database = tmp_path / "fleet.sqlite3"
    write = "from fleet.models import Node; Node.objects.create(name='n', endpoint='unix:///x')"
    env = fleet_env(DATABASE_URL=f"sqlite:///{database}")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", write],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    assert mode(VAR) == 0o700
    found = [p for p in tmp_path.iterdir() if p.name.startswith("fleet.sqlite3")]
    assert database in found
    assert {p.name: mode(p) for p in found} == {p.name: 0o600 for p in found}


def test_the_test_redis_refuses_a_client_without_its_password(redis_server):
    port = redis_server.client.connection_pool.connection_kwargs["port"]
    assert redis_server.client.connection_pool.connection_kwargs["password"]
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=port).ping()
    assert redis_server.client.config_get("bind") == {"bind": "127.0.0.1"}


def test_make_run_s_redis_has_a_password_off_the_command_line_and_listens_on_localhost_only():
    env = fleet_env(REDIS_URL=None)
    started = subprocess.run(
        ["bin/services", "start", "redis"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    try:
        shown = "from django.conf import settings; print(settings.REDIS_URL)"
        url = (
            subprocess.run(
                [sys.executable, "manage.py", "shell", "-c", shown],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        password = (VAR / "redis-password").read_text().strip()
        assert mode(VAR / "redis-password") == 0o600
        assert url == f"redis://:{password}@127.0.0.1:6379/0"
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=6379).ping()
        client = redis.Redis.from_url(url)
        assert client.ping()
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        pid = client.info("server")["process_id"]
        assert password.encode() not in (ROOT / f"/proc/{pid}/cmdline").read_bytes()
    finally:
        if "redis" in started:
            subprocess.run(["bin/services", "stop", "redis"], cwd=ROOT, env=env, check=True)
