"""Settings of Fleet's features beside the core: image updates, alerts, deploy webhooks,
metrics, the console and sockets. Read from the environment as fleet/settings.py reads the rest;
that module takes every FLEET_* name from here. The configuration page (docs/configuration.md)
explains each one.
"""

from django.core.exceptions import ImproperlyConfigured
from environs import Env, EnvError

env = Env()


def positive(name, reader, default):
    """Read a number that must be above zero."""
    value = reader(name, default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be greater than zero, got {value!r}")
    return value


def port_range(name, text):
    """A range of host ports ("8000-8999", or one port), or None for an empty text."""
    if not text:
        return None
    low, _, high = text.partition("-")
    try:
        ports = (int(low), int(high if _ else low))
    except ValueError:
        ports = (0, 0)
    if not 1 <= ports[0] <= ports[1] <= 65535:
        raise ImproperlyConfigured(f"{name} must be a range of host ports such as 8000-8999")
    return ports


try:
    # Image updates (docs/image-updates.md): how often every tag is checked, each call's limit.
    FLEET_IMAGE_CHECK_INTERVAL = positive("FLEET_IMAGE_CHECK_INTERVAL", env.float, 6 * 3600.0)
    FLEET_IMAGE_CHECK_TIMEOUT = positive("FLEET_IMAGE_CHECK_TIMEOUT", env.float, 10.0)
    # Alerts (docs/alerts.md): reading and checking intervals, how long a service may be
    # short before it is an incident, the quiet period, delivery's timeout and retries.
    FLEET_ALERT_INTERVAL = positive("FLEET_ALERT_INTERVAL", env.float, 1.0)
    FLEET_ALERT_CHECK_INTERVAL = positive("FLEET_ALERT_CHECK_INTERVAL", env.float, 5.0)
    FLEET_ALERT_DEGRADED_AFTER = positive("FLEET_ALERT_DEGRADED_AFTER", env.float, 30.0)
    FLEET_ALERT_QUIET = positive("FLEET_ALERT_QUIET", env.float, 60.0)
    FLEET_ALERT_TIMEOUT = positive("FLEET_ALERT_TIMEOUT", env.float, 5.0)
    FLEET_ALERT_RETRIES = env.int("FLEET_ALERT_RETRIES", 4)
    # Deploy webhooks: at most RATE calls per RATE_WINDOW seconds each (429 beyond), bodies
    # of at most MAX_BODY bytes (413 beyond).
    FLEET_WEBHOOK_RATE = positive("FLEET_WEBHOOK_RATE", env.int, 6)
    FLEET_WEBHOOK_RATE_WINDOW = positive("FLEET_WEBHOOK_RATE_WINDOW", env.float, 60.0)
    FLEET_WEBHOOK_MAX_BODY = positive("FLEET_WEBHOOK_MAX_BODY", env.int, 65536)
    # The API's bodies (docs/api.md): at most this many bytes, refused (413) before parsing.
    FLEET_API_MAX_BODY = positive("FLEET_API_MAX_BODY", env.int, 1_048_576)
    # Metrics (docs/metrics.md): every running replica and node sampled every INTERVAL
    # seconds by the watch, at most CONCURRENCY stats calls in flight per node, each given
    # TIMEOUT seconds; raw samples kept RAW_HOURS, 5-minute rollups ROLLUP_DAYS.
    FLEET_METRICS_INTERVAL = positive("FLEET_METRICS_INTERVAL", env.float, 10.0)
    # Calls in flight set how many replicas a round reaches (docs/metrics.md: 1 s ticks).
    FLEET_METRICS_CONCURRENCY = positive("FLEET_METRICS_CONCURRENCY", env.int, 16)
    FLEET_METRICS_TIMEOUT = positive("FLEET_METRICS_TIMEOUT", env.float, 3.0)
    FLEET_METRICS_RAW_HOURS = positive("FLEET_METRICS_RAW_HOURS", env.float, 24.0)
    FLEET_METRICS_ROLLUP_DAYS = positive("FLEET_METRICS_ROLLUP_DAYS", env.float, 30.0)
    # Consoles (docs/console.md): seconds without input before one closes; open at once per user.
    FLEET_CONSOLE_IDLE_TIMEOUT = positive("FLEET_CONSOLE_IDLE_TIMEOUT", env.float, 600.0)
    FLEET_CONSOLE_MAX_SESSIONS = positive("FLEET_CONSOLE_MAX_SESSIONS", env.int, 3)
    # Sockets (docs/api.md): open at once per user, live pages and consoles alike; one more
    # is closed with code 4429 and the reason.
    FLEET_SOCKETS_PER_USER = positive("FLEET_SOCKETS_PER_USER", env.int, 20)
except EnvError as exc:
    raise ImproperlyConfigured(f"Bad environment setting: {exc}") from exc

if not 0 <= FLEET_ALERT_RETRIES <= 20:
    raise ImproperlyConfigured(f"FLEET_ALERT_RETRIES must be 0 to 20, got {FLEET_ALERT_RETRIES}")

# Alert work has a queue of its own, consumed by a worker of its own (the Procfile's
# `alerts`), so that no backlog of converges on the default queue holds an alert back.
ALERT_QUEUE = "alerts"
ALERT_ROUTES = {
    f"fleet.tasks.{name}": {"queue": ALERT_QUEUE}
    for name in (
        "process_alerts",
        "check_alert_conditions",
        "deliver_alert",
        "sweep_alert_deliveries",
    )
}
# Beat's alert ticks: new events, what time decides, and the deliveries owed (the outbox).
ALERT_SCHEDULE = {
    name: {"task": f"fleet.tasks.{task}", "schedule": every, "options": {"expires": every}}
    for name, task, every in (
        ("process-alerts", "process_alerts", FLEET_ALERT_INTERVAL),
        ("check-alert-conditions", "check_alert_conditions", FLEET_ALERT_CHECK_INTERVAL),
        ("sweep-alert-deliveries", "sweep_alert_deliveries", FLEET_ALERT_INTERVAL),
    )
}
