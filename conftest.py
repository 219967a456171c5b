"""Test environment defaults, set before Django reads its settings.

The suite runs its own Redis (port 6390) and its own lab ("t", 10.250.8.0/24) so
that it never disturbs a Fleet started with `make run` on the same machine.
"""

import os

from lab.redis import generated_password

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")


os.environ.setdefault("SECRET_KEY", "test-only-secret-key-never-used-in-production-0123456789")
if "REDIS_URL" not in os.environ:
    # A password, as make run's Redis has one, generated once into var/.
    os.environ["REDIS_URL"] = (
        f"redis://:{generated_password('test-redis-password')}@127.0.0.1:6390/0"
    )
os.environ.setdefault("FLEET_LAB_NAME", "t")
os.environ.setdefault("FLEET_LAB_SUBNET", "10.250.8.0/24")
os.environ.setdefault("FLEET_DEFAULT_IMAGE", "10.250.8.1:5000/fleet/demo:1")
# Fleet runs at its defaults (node health, the reconcile's interval, alerts): a test that
# needs another setting says so and why.

# Set up here, after the defaults above: pytest-django would read the settings
# before this file runs if it were left to find DJANGO_SETTINGS_MODULE itself.
import django  # noqa: E402

django.setup()

# The real moving parts (Redis, the lab, Fleet's processes), one of each for the session.
pytest_plugins = ["tests.system"]
