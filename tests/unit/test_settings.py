"""Settings fail loudly on bad values instead of running with a guess."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env):
    """Import the settings in a fresh interpreter with this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "DEBUG"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import fleet.settings"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_defaults_load():
    assert load_settings(SECRET_KEY="k").returncode == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"FLEET_NODE_CHECK_INTERVAL": "soon"}, "FLEET_NODE_CHECK_INTERVAL"),
        ({"FLEET_NODE_CHECK_TIMEOUT": "-1"}, "FLEET_NODE_CHECK_TIMEOUT"),
        ({"FLEET_NODE_DOWN_AFTER": "0"}, "FLEET_NODE_DOWN_AFTER"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
        ({"FLEET_LAB_SUBNET": "10.250.300.0/24"}, "FLEET_LAB_SUBNET"),
    ],
)
def test_a_bad_value_stops_start_up_with_its_name(env, message):
    result = load_settings(SECRET_KEY="k", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_the_demo_image_offered_is_in_the_registry_of_the_lab_the_subnet_names():
    code = "from django.conf import settings as s; print(s.FLEET_DEFAULT_IMAGE)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
    env |= {"SECRET_KEY": "k", "DJANGO_SETTINGS_MODULE": "fleet.settings"}
    for subnet, image in (
        ({}, "10.250.7.1:5000/fleet/demo:1"),
        ({"FLEET_LAB_SUBNET": "10.250.20.0/24"}, "10.250.20.1:5000/fleet/demo:1"),
        ({"FLEET_DEFAULT_IMAGE": "nginx:1.27"}, "nginx:1.27"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env | subnet,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.strip() == image, result.stderr


def test_a_secret_key_is_required_when_debug_is_off(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import fleet.settings"],
        cwd=ROOT,
        env={**env, "DEBUG": "false", "SECRET_KEY_FILE": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr and "make run" in result.stderr


def test_without_secret_key_set_the_key_is_read_from_the_file_make_run_wrote(tmp_path):
    (tmp_path / "secret-key").write_text("from-the-file\n")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings as s; print(s.SECRET_KEY)"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "fleet.settings"}
        | {"SECRET_KEY_FILE": str(tmp_path / "secret-key")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-the-file"


def test_the_deploy_checklist_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "false",
        "FLEET_HTTPS": "true",
        "SECRET_KEY": "a-long-random-production-key-" + "x7Q2p9Lm4Rt8Vb1Nc6Zs3Wd5Fg0Hj" * 2,
        "ALLOWED_HOSTS": "fleet.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
