"""The login lockout's settings come from the environment and fail loudly."""

import os
import subprocess
import sys

import pytest

from tests.unit.test_settings import ROOT, load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLEET_LOGIN_FAILURE_LIMIT": "0"}, "FLEET_LOGIN_FAILURE_LIMIT"),
        ({"FLEET_LOGIN_FAILURE_LIMIT": "many"}, "FLEET_LOGIN_FAILURE_LIMIT"),
        ({"FLEET_LOGIN_COOLOFF": "-5"}, "FLEET_LOGIN_COOLOFF"),
    ],
)
def test_a_bad_lockout_setting_stops_start_up_with_its_name(env, message):
    result = load_settings(SECRET_KEY="k", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_lockout_follows_the_environment():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'fleet.settings'; "
        "django.setup(); from django.conf import settings as s; "
        "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME.total_seconds(), "
        "s.AXES_LOCKOUT_PARAMETERS)"
    )
    env = {
        **os.environ,
        "SECRET_KEY": "k",
        "FLEET_LOGIN_FAILURE_LIMIT": "3",
        "FLEET_LOGIN_COOLOFF": "60",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "3 60.0 [['username', 'ip_address']]"
