"""The alert settings fail loudly on bad values, like every other setting."""

import pytest

from tests.unit.test_settings import load_settings


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLEET_ALERT_QUIET": "0"}, "FLEET_ALERT_QUIET"),
        ({"FLEET_ALERT_INTERVAL": "often"}, "FLEET_ALERT_INTERVAL"),
        ({"FLEET_ALERT_DEGRADED_AFTER": "-5"}, "FLEET_ALERT_DEGRADED_AFTER"),
        ({"FLEET_ALERT_TIMEOUT": "0"}, "FLEET_ALERT_TIMEOUT"),
        ({"FLEET_ALERT_RETRIES": "99"}, "FLEET_ALERT_RETRIES"),
        ({"FLEET_ALERT_RETRIES": "-1"}, "FLEET_ALERT_RETRIES"),
    ],
)
def test_a_bad_alert_setting_stops_start_up_with_its_name(env, message):
    result = load_settings(SECRET_KEY="k", **env)
    assert result.returncode != 0
    assert message in result.stderr
