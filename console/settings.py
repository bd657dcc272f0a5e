"""Warren's one settings module: everything comes from the environment (docs/architecture.md)."""

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url

from console.env import (
    env_bool,
    env_bytes,
    env_duration,
    env_file,
    env_int,
    env_list,
    env_node_urls,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent


def _secret_key():
    """The configured key, else one generated once and kept beside the project."""
    configured = env_str("DJANGO_SECRET_KEY")
    if configured:
        return configured
    key_file = BASE_DIR / ".secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# --- Warren ---------------------------------------------------------------

WARREN_AMQP_URL = env_url(
    "WARREN_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F", ("amqp", "amqps")
)
WARREN_MANAGEMENT_URL = env_url(
    "WARREN_MANAGEMENT_URL", "http://127.0.0.1:15672/", ("http", "https")
)
_amqp_parts = urlsplit(WARREN_AMQP_URL)
WARREN_MANAGEMENT_USER = env_str("WARREN_MANAGEMENT_USER", unquote(_amqp_parts.username or "guest"))
WARREN_MANAGEMENT_PASSWORD = env_str(
    "WARREN_MANAGEMENT_PASSWORD", unquote(_amqp_parts.password or "guest")
)
WARREN_MANAGEMENT_TIMEOUT = env_duration(
    "WARREN_MANAGEMENT_TIMEOUT", timedelta(seconds=5)
).total_seconds()
# node name -> management URL, for cluster nodes whose names don't resolve here
WARREN_MANAGEMENT_NODE_URLS = env_node_urls("WARREN_MANAGEMENT_NODE_URLS")
WARREN_TRACE_VHOSTS = env_list("WARREN_TRACE_VHOSTS", ["/"])
WARREN_BODY_LIMIT = env_int("WARREN_BODY_LIMIT", 65536, minimum=0)
WARREN_RPC_TIMEOUT = env_duration("WARREN_RPC_TIMEOUT", timedelta(seconds=30)).total_seconds()
WARREN_RETENTION = env_duration("WARREN_RETENTION", timedelta(days=7))
# How a flow's service is named: the first rule that finds a name in the request
# (tracer/store/services.py: celery_task, type, header:<name>, exchange_routing_key).
WARREN_SERVICE_RULES = env_list(
    "WARREN_SERVICE_RULES", ["celery_task", "type", "exchange_routing_key"]
)
# How long a tap asked to stop may take before it exits regardless (nothing is
# lost: what it had not acked waits in the tap queue). Shorter than the 5 s
# `make run`'s supervisor (honcho) waits before it kills; raise it under one
# that waits longer (systemd: TimeoutStopSec).
WARREN_TAP_STOP_GRACE = env_duration("WARREN_TAP_STOP_GRACE", timedelta(seconds=4)).total_seconds()
# TLS for amqps:// (the broker's certificate is always verified; rabbit/tls.py).
WARREN_AMQP_CA_FILE = env_file("WARREN_AMQP_CA_FILE")
WARREN_AMQP_CERT_FILE = env_file("WARREN_AMQP_CERT_FILE")
WARREN_AMQP_KEY_FILE = env_file("WARREN_AMQP_KEY_FILE")
WARREN_TAP_QUEUE = env_str("WARREN_TAP_QUEUE", "warren.tap")
WARREN_TAP_QUEUE_MAX_LENGTH = env_int("WARREN_TAP_QUEUE_MAX_LENGTH", 1_000_000, minimum=1)
# The tap queue's bound in bytes of message bodies: while no tap reads, the
# broker keeps at most this much of the firehose (oldest dropped, counted).
WARREN_TAP_QUEUE_MAX_BYTES = env_int("WARREN_TAP_QUEUE_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
# Capture's spool (tracer/tap/spool.py): where its files are, and its bounds in
# bytes and age. Full, capture stops acking and the bounded tap queue takes over.
WARREN_SPOOL_DIR = Path(env_str("WARREN_SPOOL_DIR", str(BASE_DIR / "var" / "spool")))
WARREN_SPOOL_MAX = env_bytes("WARREN_SPOOL_MAX", 4 * 1024**3, minimum=1024)
WARREN_SPOOL_MAX_AGE = env_duration("WARREN_SPOOL_MAX_AGE", timedelta(days=7)).total_seconds()
# How much lower than capture indexing runs (nice): indexing may wait for a core, capture not.
WARREN_INDEX_NICENESS = env_int("WARREN_INDEX_NICENESS", 5, minimum=0, maximum=19)
# How much nicer than it was started the tap runs, all of it but capture's reading
# (real-time where allowed): a background service, behind the traffic it watches.
WARREN_TAP_NICENESS = env_int("WARREN_TAP_NICENESS", 10, minimum=0, maximum=19)
# Indexing pauses while the machine's cores are busy with other work, at most
# this many seconds behind (tracer/tap/give_way.py); 0: it never pauses.
WARREN_INDEX_PAUSE_MAX = env_int("WARREN_INDEX_PAUSE_MAX", 30, minimum=0)
WARREN_MASKED_FIELDS = [
    name.lower()
    for name in env_list(
        "WARREN_MASKED_FIELDS",
        ["password", "passwd", "secret", "token", "authorization", "api_key"],
    )
]
WARREN_REPLAY_CONFIRM_ABOVE = env_int("WARREN_REPLAY_CONFIRM_ABOVE", 100, minimum=1)
# Who may read /metrics without a bearer token: addresses or networks (CIDR).
WARREN_METRICS_ALLOW = env_list("WARREN_METRICS_ALLOW", ["127.0.0.0/8", "::1/128"])
# Where flows go as OpenTelemetry spans (OTLP/HTTP); unset: not exported.
WARREN_OTLP_ENDPOINT = (
    env_url("WARREN_OTLP_ENDPOINT", "", ("http", "https"))
    if env_str("WARREN_OTLP_ENDPOINT")
    else ""
)
REDIS_URL = env_url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss"))

# --- Django ---------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "console",
    "tracer",
    "tracer.export",
    "workloads",
    "replay",
    "benchmarks",
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
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
    # NUL in a query string refused; an unavailable database is a 503 with a banner.
    "console.middleware.RequestGuards",
]

ROOT_URLCONF = "console.urls"
ASGI_APPLICATION = "console.asgi.application"

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
                "console.context.navigation",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'warren.sqlite3'}"),
        conn_max_age=60,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets pages read while the tap writes; the timeout rides out short locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so that a test can hand the test database to a tap
    # subprocess; one per test run so that runs side by side do not collide.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"warren-test-{os.getpid()}.sqlite3")
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A page waits at most this long for a lock (the tap's writes, a migration)
    # before it shows the "database unavailable" banner; the tap retries.
    _lock_ms = int(
        env_duration("WARREN_DB_LOCK_TIMEOUT", timedelta(seconds=5)).total_seconds() * 1000
    )
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c lock_timeout={_lock_ms}"
    # Under ASGI every request runs in a thread of its own: a connection kept
    # for reuse is never reused and stays open until collected. Under load that
    # ran PostgreSQL out of connections ("too many clients"); close at the end.
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: five failures per user and address, then a 15-minute wait.
AXES_FAILURE_LIMIT = env_int("WARREN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "lockout.html"
AXES_VERBOSE = False

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "console.views.errors.csrf_failure"  # a styled 403 with a way back
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Behind TLS (WARREN_HTTPS=true) cookies only travel encrypted.
WARREN_HTTPS = env_bool("WARREN_HTTPS", False)
SESSION_COOKIE_SECURE = WARREN_HTTPS
CSRF_COOKIE_SECURE = WARREN_HTTPS
if WARREN_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s
        # channels-redis blocks for in BZPOPMIN: an idle consumer then loses the
        # race now and then and its WebSocket drops. A longer timeout still
        # notices a dead Redis.
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "capacity": 1000,
            "expiry": 10,
        },
    }
}

# Pages must keep working when Redis is down, so the cache stays in-process.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # Captured events, flows and roll-ups older than WARREN_RETENTION (tracer/store/retention.py).
    "tracer-prune": {"task": "tracer.prune", "schedule": 600.0},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("WARREN_LOG_LEVEL", "INFO")},
    # pika logs every failed connection attempt with a traceback; Warren reports
    # those itself in one line, so pika speaks only when something is broken.
    "loggers": {"httpx": {"level": "WARNING"}, "pika": {"level": "CRITICAL"}},
}
