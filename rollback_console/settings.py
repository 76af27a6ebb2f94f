"""Settings, read from the environment (see the contract's "Running it").

The embedded default (SQLite, a filesystem broker under var/) needs nothing set but DEBUG=1 or a SECRET_KEY;
at scale DATABASE_URL and CELERY_BROKER_URL point at PostgreSQL and Redis.
"""

from datetime import timedelta
from pathlib import Path

import dj_database_url
import django_stubs_ext
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

from rollback_console import queues
from rollback_console.env import env_bool, env_int, env_list, env_str

# Lets classes that are generic only in the type stubs (ModelAdmin[Action], Prefetch[...]) be subscripted at run
# time too, as `mypy --strict` asks for their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database, broker and anchors live here

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "insecure-local-only-key" if DEBUG else "")
# Sessions, CSRF tokens and password resets are signed with it: a short or guessable key forges them all.
SECRET_KEY_MIN_LENGTH = 50
if not DEBUG and (len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or SECRET_KEY.startswith("insecure")):
    raise ImproperlyConfigured(
        f"Set SECRET_KEY to at least {SECRET_KEY_MIN_LENGTH} random characters (or DEBUG=1 for a local run)."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "guardian",
    "django_filters",
    "drf_spectacular",
    "django_celery_beat",
    "csp",
    "axes",
    "policies",
    "audit",
    "actions",
    "rollbacks",
    "demo_shop",
    "console",
    "agents",
]

MIDDLEWARE = [
    "rollback_console.logs.RequestContextMiddleware",  # first: every line logged for a request names it
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files under gunicorn (docker-compose), no web server needed
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "rollback_console.middleware.RefuseNulCharactersMiddleware",  # PostgreSQL cannot store NUL: a 400, not a 500
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "rollback_console.middleware.ConsolePageNotFoundMiddleware",  # the console's 404 page with DEBUG on too
    "audit.access.AccessActorMiddleware",  # names who changed a role or a user in the access.* events
    "axes.middleware.AxesMiddleware",  # answers a locked-out login with 429; last, as axes asks
]

ROOT_URLCONF = "rollback_console.urls"
WSGI_APPLICATION = "rollback_console.wsgi.application"

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
                "console.context_processors.console_header",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'rollback_console.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web server write to the same file: wait for the lock instead of failing at once,
    # and take the write lock at BEGIN so two writers never deadlock upgrading read locks.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "rollback_console.authentication.LoginThrottleBackend",  # first: refuses a locked-out address before any check
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Login throttling (django-axes): an address that fails AXES_FAILURE_LIMIT logins is refused for AXES_COOLOFF_TIME.
# By address, not by username, so spraying many usernames from one address is stopped too; a success resets it.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "audit.access.login_address"  # the address throttles and auth.failed counts use
AXES_VERBOSE = False
# Off unless configured: the reset flow mails a sign-in link, so it needs a mail server people's accounts trust.
PASSWORD_RESET_ENABLED = env_bool("PASSWORD_RESET_ENABLED", False)
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every start while `collectstatic` has not made it

DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024  # the batch endpoint's limit; single posts check 1 MiB
ACTION_BODY_MAX_BYTES = 1024 * 1024
BATCH_BODY_MAX_BYTES = 16 * 1024 * 1024
BATCH_MAX_ACTIONS = 1000

REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "rollback_console.parsers.ORJSONParser",  # depth- and size-limited: deep nesting is a 400, not a 500
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rollback_console.authentication.AuditedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rollback_console.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "rollback_console.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # How many proxies in front of the app append to X-Forwarded-For: 0 trusts REMOTE_ADDR alone. Throttles and
    # the per-address count of refused calls (audit.access) read the client's address by this rule.
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    # Rates per token or person ("user"), per address for calls without one ("anon", only where a view lets them
    # in), and for reading the trail ("audit", whose pages count millions of rows). A throttled call is 429 and
    # counted as access.throttled per address and minute. Counts live in the cache: set CACHE_URL to a Redis so
    # every process shares them (otherwise each process counts alone).
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON_RATE", "120/min"),
        "user": env_str("THROTTLE_USER_RATE", "1200/min"),
        "audit": env_str("THROTTLE_AUDIT_RATE", "120/min"),
    },
}
_cache_url = env_str("CACHE_URL", "locmem://")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url.startswith(("redis://", "rediss://"))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# Every token expires (the contract's "Safer configuration"): issue_token and the admin refuse a longer life.
TOKEN_MAX_AGE_DAYS = env_int("TOKEN_MAX_AGE_DAYS", 365)
if TOKEN_MAX_AGE_DAYS < 1:
    raise ImproperlyConfigured("TOKEN_MAX_AGE_DAYS must be at least 1: tokens must expire.")
REST_KNOX = {
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_TTL": timedelta(days=min(90, TOKEN_MAX_AGE_DAYS)),
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rollback Console API",
    "DESCRIPTION": "Record agent actions, request and authorize their reversal, and read the audit trail.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "ActionStateEnum": "actions.models.ActionState",
        "ReversibilityEnum": "actions.models.Reversibility",
        "RollbackStateEnum": "rollbacks.models.RollbackState",
        "TriggerEnum": "rollbacks.models.Trigger",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "rollback_console.api_schema.add_error_responses",
    ],
}

# Celery: the embedded default is kombu's filesystem transport under var/, so one machine needs no Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control, relative to the cwd
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)  # kombu lists them but never creates them
else:
    # Redis redelivers an unacknowledged message after the visibility timeout: every retry delay must stay
    # below it, or a delayed retry would be delivered twice (tests/rollbacks assert this).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        # A Redis that vanishes without closing the socket (failover, a stopped container) must not hang a
        # publish or a consume forever: time out, and let Celery reconnect (docs/execution.md, "Broker outages").
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 10,
        "retry_on_timeout": True,
    }
# Queues (rollback_console/queues.py): execution, communications and housekeeping, each with its own workers.
CELERY_QUEUE_PREFIX = env_str("CELERY_QUEUE_PREFIX", "")
CELERY_TASK_ROUTES = queues.routes(CELERY_QUEUE_PREFIX)
CELERY_TASK_DEFAULT_QUEUE = CELERY_QUEUE_PREFIX + queues.HOUSEKEEPING  # a worker without -Q consumes it too
CELERY_TASK_CREATE_MISSING_QUEUES = True
# `celery worker` without -Q consumes every queue (the demo); compose gives each service its own with -Q.
CELERY_TASK_QUEUES = {name: {"exchange": name, "routing_key": name} for name in queues.queue_names(CELERY_QUEUE_PREFIX)}
# Broker outages (docs/execution.md): the worker reconnects for ever rather than exit, at start as later; a
# publish (dispatch's on-commit queueing, a task's retry) waits out a restart of about ten seconds before it gives
# up (longer would hold a web request that long), and then the stalled-rollback sweeper queues the work again.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 5, "interval_start": 0.5, "interval_step": 1, "interval_max": 3}
# On a lost connection a task in flight finishes its call and records its outcome; it is acknowledged once Redis
# is back, or redelivered after the visibility timeout and finds its work done. Cancelling it (Celery 6's default)
# would cut a call to an integrator in half for nothing. Celery 5.7.0 is pinned away from (pyproject.toml): its
# consumer closes the lost connection after collecting it, kombu's Redis channel then restores unacknowledged
# messages through a transport whose client is gone, and the worker's main process dies of
# AttributeError('NoneType' object has no attribute 'hostname') (docs/execution.md, "Broker outages";
# tests/integration/test_broker_outage.py).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "anchor-audit-head": {"task": "audit.tasks.anchor_audit_head", "schedule": 300.0},
    "deliver-audit-anchors": {"task": "audit.tasks.deliver_audit_anchors", "schedule": 60.0},
    "verify-audit-since-checkpoint": {"task": "audit.tasks.verify_audit_trail", "schedule": 600.0},
    "flush-access-failures": {"task": "audit.tasks.flush_access_failures", "schedule": 60.0},
    "resume-stalled-rollbacks": {"task": "rollbacks.tasks.resume_stalled_rollbacks", "schedule": 60.0},
    "announce-inbox-items": {"task": "rollbacks.tasks.announce_inbox_items", "schedule": 60.0},
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "rollback-console@localhost")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))  # for the file-based backend of the demo

# Who reads which part of the trail is the rollbacks app's rule; the audit app calls it by this name.
AUDIT_TRAIL_SCOPE = "rollbacks.selectors.trail_scope_for"
AUDIT_ANCHOR_PATH = env_str("AUDIT_ANCHOR_PATH", str(VAR_DIR / "audit-anchors.jsonl"))
# A second place for anchors, off this machine: each anchor line is also POSTed there, signed with the secret.
AUDIT_ANCHOR_URL = env_str("AUDIT_ANCHOR_URL", "")
AUDIT_ANCHOR_SECRET = env_str("AUDIT_ANCHOR_SECRET", "")
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5)
# Where people open the console: announcements link each item's page under it.
CONSOLE_BASE_URL = env_str("CONSOLE_BASE_URL", "http://127.0.0.1:8000")
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 5)
# Threads per worker process that carry calls to integrators at once (each integrator's `max_in_flight` bounds
# them across all workers); 1 sends them one after another.
INTEGRATOR_CALL_THREADS = env_int("INTEGRATOR_CALL_THREADS", 64)
# Without Redis, integrators' call slots and circuits are lock files here (one machine's workers share them).
CIRCUITS_DIR = env_str("CIRCUITS_DIR", str(VAR_DIR / "circuits"))
IDEMPOTENCY_KEY_TTL = timedelta(hours=24)
# Module prefixes a manifest's `python` reversal handlers may lie under (the contract's "Safer configuration").
PYTHON_REVERSAL_MODULES = env_list("PYTHON_REVERSAL_MODULES", ["demo_shop.handlers"])

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    # Browsers honour HSTS only over HTTPS, so it costs nothing on a plain-HTTP local run. Redirecting to HTTPS
    # is the deployment's choice (the demo's webhooks and compose speak plain HTTP): set SECURE_SSL_REDIRECT=1,
    # and SECURE_PROXY_SSL_HEADER=1 behind a proxy that terminates TLS and sets X-Forwarded-Proto.
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
    if env_bool("SECURE_PROXY_SSL_HEADER", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Scripts only from our own static files (htmx included; the console has no inline script). Inline styles stay
# allowed: the console's templates and drawn SVG charts set style attributes, which no nonce can cover.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; empty (the default) leaves it 404.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# Logs (rollback_console/logs.py): every line carries the rollback, step, task or request it is about. JSON, one
# object a line, unless DEBUG (the demo) or LOG_FORMAT=plain; the workers log the same way (Celery leaves the root
# logger to this configuration).
LOG_FORMAT = env_str("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured("LOG_FORMAT is json or plain.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "rollback_console.logs.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(processName)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "processName": "process"},
            "reserved_attrs": [*RESERVED_ATTRS, "context"],  # `context` is the plain format's,
        },
        "plain": {"format": "[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s%(context)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["context"], "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
