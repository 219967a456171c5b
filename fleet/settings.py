"""Fleet settings: one module, fed by environment variables.

Every value comes from environs' typed readers, which fail loudly on a value they cannot
parse. Defaults are what `make run` needs: SQLite in var/, Redis on localhost, 3 lab nodes.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from environs import EnvError

from fleet import settings_features as features

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = features.env
_positive = features.positive


def _generated(path):
    """What bin/secrets generated into a file under var/ ("" when there is none)."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


try:
    DEBUG = env.bool("DEBUG", False)
    # Where `make run` keeps the key it generated, read when SECRET_KEY is not set, so that
    # every manage.py command works in any shell with nothing exported.
    SECRET_KEY_FILE = env.path("SECRET_KEY_FILE", VAR_DIR / "secret-key")
    SECRET_KEY = (
        env.str("SECRET_KEY", "")
        or _generated(SECRET_KEY_FILE)
        or ("insecure-debug-only-key" if DEBUG else "")
    )
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
    HTTPS = env.bool("FLEET_HTTPS", False)
    DATABASES = {"default": env.dj_db_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'fleet.sqlite3'}")}
    # Unset: make run's own Redis, with the password bin/secrets generated once.
    _auth = quote(_generated(VAR_DIR / "redis-password"), safe="")
    _auth = f":{_auth}@" if _auth else ""
    REDIS_URL = env.str("REDIS_URL", "") or f"redis://{_auth}127.0.0.1:6379/0"
    LOG_LEVEL = env.log_level("LOG_LEVEL", "INFO")

    # Node liveness (docs/nodes.md, "Node health"): a node is alive iff it answers a
    # cheap GET /_ping within FLEET_NODE_PING_TIMEOUT. The watch pings every node every
    # FLEET_NODE_PING_INTERVAL; beat checks every node (ping, then its engine's info with
    # FLEET_NODE_CHECK_TIMEOUT) every FLEET_NODE_CHECK_INTERVAL. A node that
    # stops answering is unreachable, and down once it has not answered for
    # FLEET_NODE_DOWN_AFTER seconds.
    FLEET_NODE_CHECK_INTERVAL = _positive("FLEET_NODE_CHECK_INTERVAL", env.float, 5.0)
    FLEET_NODE_CHECK_TIMEOUT = _positive("FLEET_NODE_CHECK_TIMEOUT", env.float, 10.0)
    FLEET_NODE_PING_INTERVAL = _positive("FLEET_NODE_PING_INTERVAL", env.float, 1.0)
    FLEET_NODE_PING_TIMEOUT = _positive("FLEET_NODE_PING_TIMEOUT", env.float, 2.0)
    FLEET_NODE_DOWN_AFTER = _positive("FLEET_NODE_DOWN_AFTER", env.float, 10.0)
    FLEET_NODE_CHECK_THREADS = _positive("FLEET_NODE_CHECK_THREADS", env.int, 32)
    # Damping: at most this many nodes go down (their replicas moved) per minute; a node
    # that went down and came back more than FLAP_LIMIT times in FLAP_WINDOW seconds takes
    # no new replicas for HOLD_DOWN seconds.
    FLEET_NODE_DOWN_PER_MINUTE = _positive("FLEET_NODE_DOWN_PER_MINUTE", env.int, 6)
    FLEET_NODE_FLAP_LIMIT = _positive("FLEET_NODE_FLAP_LIMIT", env.int, 3)
    FLEET_NODE_FLAP_WINDOW = _positive("FLEET_NODE_FLAP_WINDOW", env.float, 600.0)
    FLEET_NODE_HOLD_DOWN = _positive("FLEET_NODE_HOLD_DOWN", env.float, 600.0)
    # Image pulls: how long one may take in all, and how many may run at once on one node.
    FLEET_PULL_TIMEOUT = _positive("FLEET_PULL_TIMEOUT", env.float, 60.0)
    FLEET_PULL_CONCURRENCY = _positive("FLEET_PULL_CONCURRENCY", env.int, 2)
    # Services: the most replicas one service may have, how often the safety-net
    # reconcile runs, and credentials for private registries as
    # {"registry.example.com": {"username": "...", "password": "..."}}.
    FLEET_MAX_REPLICAS = _positive("FLEET_MAX_REPLICAS", env.int, 100)
    FLEET_RECONCILE_INTERVAL = _positive("FLEET_RECONCILE_INTERVAL", env.float, 5.0)
    FLEET_INGRESS_BIND = env.str("FLEET_INGRESS_BIND", "127.0.0.1:8080")  # HAProxy's listener
    FLEET_INGRESS_DIR = env.path("FLEET_INGRESS_DIR", VAR_DIR / "ingress")  # config, sockets
    FLEET_INGRESS_HAPROXY = env.str("FLEET_INGRESS_HAPROXY", "haproxy")  # the binary to run
    FLEET_REGISTRY_AUTH = env.json("FLEET_REGISTRY_AUTH", {})
    # Logins: after this many failures for one user name from one address, that pair is
    # locked out for the cool-off (seconds); a successful login resets the count.
    FLEET_LOGIN_FAILURE_LIMIT = _positive("FLEET_LOGIN_FAILURE_LIMIT", env.int, 5)
    FLEET_LOGIN_COOLOFF = _positive("FLEET_LOGIN_COOLOFF", env.float, 900.0)
    # What the dashboard's new-service form suggests: by default the demo image in the
    # registry of the lab that FLEET_LAB_SUBNET names (at the subnet's first address).
    try:
        lab_registry = ipaddress.IPv4Network(env.str("FLEET_LAB_SUBNET", "") or "10.250.7.0/24")[1]
    except (ValueError, IndexError) as exc:
        raise ImproperlyConfigured(f"Bad environment setting FLEET_LAB_SUBNET: {exc}") from exc
    FLEET_DEFAULT_IMAGE = env.str("FLEET_DEFAULT_IMAGE", f"{lab_registry}:5000/fleet/demo:1")
    # The key that seals services' secret values at rest; derived from SECRET_KEY if unset.
    FLEET_SECRETS_KEY = env.str("FLEET_SECRETS_KEY", "")
    # Nodes on plain tcp:// (no TLS) are refused unless this is set: whoever reaches such an
    # engine's port can run any container on that host.
    FLEET_ALLOW_PLAIN_TCP = env.bool("FLEET_ALLOW_PLAIN_TCP", False)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed for the
    # client's address, in the login lockout and the audit trail; no one's by default.
    FLEET_TRUSTED_PROXIES = env.list("FLEET_TRUSTED_PROXIES", [])
    # Guard rails for what operators may run (checked when a spec is validated): images only
    # from these registries (host[:port], docker.io for Docker Hub), and fixed published
    # host ports only in this range ("8000-8999"). Empty: anything.
    FLEET_ALLOWED_REGISTRIES = [r.lower() for r in env.list("FLEET_ALLOWED_REGISTRIES", [])]
    FLEET_PUBLISHED_PORTS = env.str("FLEET_PUBLISHED_PORTS", "")
except EnvError as exc:
    raise ImproperlyConfigured(f"Bad environment setting: {exc}") from exc

# The features' own settings (alerts, webhooks, metrics, image updates, console).
globals().update({k: v for k, v in vars(features).items() if k.startswith("FLEET_")})
if TYPE_CHECKING:  # the same names for the type checker (mypy), which cannot see that update
    from fleet.settings_features import *  # noqa: F403

if not SECRET_KEY:
    raise ImproperlyConfigured(
        f"SECRET_KEY must be set when DEBUG is off: export it, or run `make run` once, which "
        f"generates one into {SECRET_KEY_FILE}."
    )
try:
    FLEET_TRUSTED_PROXIES = [ipaddress.ip_network(p, strict=False) for p in FLEET_TRUSTED_PROXIES]
except ValueError as exc:
    raise ImproperlyConfigured(f"FLEET_TRUSTED_PROXIES: {exc}") from exc
FLEET_PUBLISHED_PORTS = features.port_range("FLEET_PUBLISHED_PORTS", FLEET_PUBLISHED_PORTS)
if not isinstance(FLEET_REGISTRY_AUTH, dict) or not all(
    isinstance(v, dict) for v in FLEET_REGISTRY_AUTH.values()
):
    raise ImproperlyConfigured(
        'FLEET_REGISTRY_AUTH must be {"REGISTRY": {"username": ..., "password": ...}, ...}'
    )

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "csp",
    "fleet",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "fleet.urls"
ASGI_APPLICATION = "fleet.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "dashboard.context.live_socket",
            ],
        },
    },
]

# SQLite must hold up while web, worker, beat and watch write at once: WAL lets
# readers run beside the writer, IMMEDIATE takes the write lock at BEGIN (so a
# transaction never fails half-way on an upgrade), and the busy timeout makes
# writers queue instead of raising "database is locked".
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that worker processes started by the tests share it.
    _db["TEST"] = {"NAME": str(Path(_db["NAME"]).with_suffix(".test.sqlite3"))}
else:
    _db["CONN_HEALTH_CHECKS"] = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out user name and address is refused before any password check.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# django-axes: failed logins counted per user name and address, in the database, on the
# login page, the admin's login and the API's token endpoint alike.
AXES_FAILURE_LIMIT = FLEET_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=FLEET_LOGIN_COOLOFF)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client's address, through trusted proxies only (FLEET_TRUSTED_PROXIES).
AXES_CLIENT_IP_CALLABLE = "fleet.access.addresses.client_address"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise expects it, even empty
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve straight from the finders so that `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Security headers that hold on plain HTTP; the HTTPS-only ones follow FLEET_HTTPS.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Said here, not left to defaults: the session goes with a link followed from elsewhere (an
# alert's mail opens its page logged in), never with a form or request another site makes;
# the CSRF cookie goes with requests from Fleet's own pages only.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Strict"
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy (django-csp): pages load scripts, styles, images and sockets from
# Fleet itself only, with no inline script or style anywhere (the API docs page included),
# and may not be framed. 'self' covers the same-origin websocket (ws:// and wss://).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first, so that anonymous requests get 401 with a WWW-Authenticate header.
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["fleet.api.permissions.ActionPermission"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
    "DEFAULT_PARSER_CLASSES": [
        "fleet.api.parsers.JSONParser",  # DRF's, with a too deeply nested body a 400
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}

# API tokens (django-rest-knox): only a hash is stored; Fleet's model adds a name and a
# public id. No expiry unless the client asks for one when it makes the token.
KNOX_TOKEN_MODEL = "fleet.ApiToken"
REST_KNOX = {"TOKEN_TTL": None, "AUTH_HEADER_PREFIX": "Token"}
# Knox's own migrations make its default token table even when the model is swapped for
# ours: an unused table whose key to users blocks PostgreSQL's flush. Without migrations
# the app makes no table, since its one model is swapped out.
MIGRATION_MODULES = {"knox": None}

SPECTACULAR_SETTINGS = {
    "TITLE": "Fleet API",
    "DESCRIPTION": "Nodes, services and events of a Docker fleet.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["fleet.api.permissions.ReadsFleet"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "NodeStatusEnum": "fleet.models.nodes.Node.Status",
        "DeploymentStatusEnum": "fleet.models.services.Deployment.Status",
    },
}

CHANNEL_LAYERS = {
    "default": {
        # channels_redis's pub/sub layer: a group message reaches each server process once
        # (see fleet/live_layer.py).
        "BACKEND": "fleet.live_layer.FleetChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}

# Celery: a job is a row first and its task only carries ids; tasks are acked
# after they ran and requeued when their worker dies, so each must be safe to run twice.
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_ROUTES = features.ALERT_ROUTES
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "check-nodes": {
        "task": "fleet.tasks.check_nodes",
        "schedule": FLEET_NODE_CHECK_INTERVAL,
        # A tick that could not run in its own interval is stale: the next one replaces it.
        "options": {"expires": FLEET_NODE_CHECK_INTERVAL},
    },
    "reconcile": {
        "task": "fleet.tasks.run_reconcile",
        "schedule": FLEET_RECONCILE_INTERVAL,
        "options": {"expires": FLEET_RECONCILE_INTERVAL},
    },
    **features.ALERT_SCHEDULE,
    "metrics-rollup": {
        "task": "fleet.tasks.roll_up_metrics",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "check-images": {
        "task": "fleet.tasks.check_images",
        "schedule": features.FLEET_IMAGE_CHECK_INTERVAL,
        "options": {"expires": features.FLEET_IMAGE_CHECK_INTERVAL},
    },
    "metrics-thresholds": {
        "task": "fleet.tasks.check_metric_thresholds",
        "schedule": 30.0,
        "options": {"expires": 30.0},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Every handler redacts deploy webhooks' secrets, whatever logged them.
    "filters": {"secrets": {"()": "fleet.asgi_access.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["secrets"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers write through the handler above alone (their default handlers
    # would mail or print records unfiltered).
    "loggers": {
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "INFO"},
    },
}
