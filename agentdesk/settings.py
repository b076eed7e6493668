"""AgentDesk settings: all from the environment (README "Configuration"), with defaults that
run on a fresh machine: SQLite in ``var/``, and the private Redis that ``make run`` starts."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from agentdesk.env import celery_broker_url, env_bool, env_int, env_list, env_secret, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("AGENTDESK_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_secret("SECRET_KEY", VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
# Demo mode seeds demo logins (password "demo"). Only `make run` turns it on; never in production.
DEMO_MODE = env_bool("AGENTDESK_DEMO", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
PUBLIC_BASE_URL = env_url("PUBLIC_BASE_URL", "http://127.0.0.1:8000", schemes=("http", "https")).rstrip("/")
# Where the demo's telephony accounts point; empty means no emulators (not checked by /healthz).
EMULATOR_URL = env_str("EMULATOR_URL", "http://127.0.0.1:8100").rstrip("/")
if EMULATOR_URL:
    env_url("EMULATOR_URL", EMULATOR_URL, schemes=("http", "https"))
# Callers sending it as a bearer token see /healthz's details (anyone else: up or down only).
HEALTHZ_TOKEN = env_str("HEALTHZ_TOKEN")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "channels",
    "axes",
    "agentdesk",
    "campaigns",
    "calls",
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
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a lockout (axes' backend refusing a throttled login) into the lockout page.
    "axes.middleware.AxesMiddleware",
    # Innermost, and sync only: under ASGI Django then runs the whole chain in one thread. With
    # an async-capable middleware innermost, every MiddlewareMixin inside the first sync-only one
    # ran async and hopped to a thread and back for each of its methods: eight hops a request
    # (tests/agentdesk/test_settings.py). It strips NUL before any view or form reads a value.
    "campaigns.nul.StripNulMiddleware",
]

ROOT_URLCONF = "agentdesk.urls"
ASGI_APPLICATION = "agentdesk.asgi.application"
WSGI_APPLICATION = None

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
                "agentdesk.context_processors.roles",
            ],
        },
    }
]

# -- database --------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'agentdesk.sqlite3'}")
try:
    _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a database URL this project supports: {exc}") from None
if _db["ENGINE"] not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    raise ImproperlyConfigured("DATABASE_URL must be sqlite:///path or postgres://... (got another engine)")
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes share the file: WAL lets readers run beside one writer, IMMEDIATE makes
    # writers queue at BEGIN instead of failing mid-transaction.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not :memory:, because Celery workers and daphne run as other processes.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
if env_bool("AGENTDESK_ASGI", False):
    # The web process (agentdesk/asgi.py sets it): Django runs each request in a thread of its
    # own under ASGI, so a persistent connection is never reused, only left open until that
    # thread's objects are collected. bench/load_bench.py saw one daphne hold 92 PostgreSQL
    # connections under 32 clients, then answer callbacks 500 ("too many clients"). Django's
    # advice for ASGI: no persistent connections. Workers keep theirs.
    _db["CONN_MAX_AGE"] = 0
    if _db["ENGINE"] == "django.db.backends.postgresql":
        # A pool instead: a request borrows a connection and gives it back when it ends, so a
        # request pays no connect, and a burst (100 Dial clicks in a second) waits for one of
        # DB_POOL_MAX_SIZE connections instead of opening 100 and meeting PostgreSQL's
        # "too many clients". DB_POOL_TIMEOUT: how long a request waits before it fails.
        _db.setdefault("OPTIONS", {})["application_name"] = f"agentdesk-web-{os.getpid()}"
        _db["OPTIONS"]["pool"] = {
            "min_size": env_int("DB_POOL_MIN_SIZE", 2, minimum=0),
            "max_size": env_int("DB_POOL_MAX_SIZE", 20, minimum=1),
            "timeout": env_int("DB_POOL_TIMEOUT", 20, minimum=1),
        }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
IS_POSTGRES = _db["ENGINE"] == "django.db.backends.postgresql"

# -- redis: broker, channel layer, cache -------------------------------------------------------
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis" / "redis.sock"
REDIS_URL = env_str("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}"
env_url("REDIS_URL", REDIS_URL, schemes=("redis", "rediss", "unix"))
CELERY_BROKER_URL = celery_broker_url(REDIS_URL)  # kombu spells a unix socket its own way

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL}],
            "prefix": env_str("CHANNELS_PREFIX", "agentdesk"),
            "capacity": 500,
            "expiry": 30,
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_PREFIX", "agentdesk"),
        "TIMEOUT": 300,
    }
}

# -- celery ------------------------------------------------------------------------------------
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Dials get their own queue so an import never delays a click (README "Processes").
CELERY_TASK_ROUTES = {
    "calls.tasks.place_call": {"queue": "dial"},
    "calls.tasks.end_call": {"queue": "dial"},
    "calls.tasks.dispose_call": {"queue": "dial"},
    "campaigns.tasks.*": {"queue": "imports"},
}
# Longer than any retry chain, so an unacked task is never redelivered while still retrying.
# unacked_restore_throttle=1: look for a dead worker's tasks on every restore tick (every 10 s, a
# cheap sorted-set range) instead of kombu's default of every tenth tick.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7200, minimum=1),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {"task": "agentdesk.tasks.expire_leases", "schedule": 30.0},
    "reconcile-calls": {"task": "calls.tasks.reconcile_calls", "schedule": 60.0},
}

# -- calls and leads ---------------------------------------------------------------------------
# A dial's retryable failures back off base * 2**n (with jitter) up to the cap, at most N times.
CALLS_RETRY_BASE_SECONDS = env_int("CALLS_RETRY_BASE_SECONDS", 2, minimum=1)
CALLS_RETRY_CAP_SECONDS = env_int("CALLS_RETRY_CAP_SECONDS", 60, minimum=1)
CALLS_DIAL_MAX_RETRIES = env_int("CALLS_DIAL_MAX_RETRIES", 3, minimum=0)
# The reconciler looks at a live call with no signal for this long: a platform that can look a
# call up is asked; elsewhere a call that never connected is failed as lost.
CALLS_LOST_AFTER_SECONDS = env_int("CALLS_LOST_AFTER_SECONDS", 900, minimum=30)
# A connected call on a platform that cannot look calls up is ended (never failed) only after
# this long: real conversations last hours, not minutes.
CALLS_MAX_CALL_SECONDS = env_int("CALLS_MAX_CALL_SECONDS", 4 * 3600, minimum=60)
# The agent pressed End on a call whose ids the platform never sent (Ryng: a dial answered after
# the timeout, its callbacks lost), was told to hang up their phone, and nothing has come since
# for this long: the reconciler closes it here.
CALLS_END_WITHOUT_IDS_SECONDS = env_int("CALLS_END_WITHOUT_IDS_SECONDS", 120, minimum=10)
# How long a lead stays leased to an agent without the desk renewing it.
LEAD_LEASE_SECONDS = env_int("LEAD_LEASE_SECONDS", 120, minimum=30)

# -- auth --------------------------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
# Sessions kept in the database and read through the cache (Redis): a request's sign-in costs a
# cache read, not a query (issue 16's Save: every desk command pays it). Signing out deletes both.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Pages carry the CSRF token themselves (forms, and hx-headers on <body>): scripts never read it.
CSRF_COOKIE_HTTPONLY = True

# Login throttling (django-axes, docs/security.md): after LOGIN_FAILURE_LIMIT wrong passwords for
# one username, or from one address, the next tries are refused (429, the lockout page) for
# LOGIN_LOCKOUT_MINUTES; a supervisor unlocks an agent on the agents board, an admin anyone
# (admin "Access attempts", or `manage.py axes_reset_username <name>`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend, whose read of a session's user brings its roles and agent row along.
    "agentdesk.roles.SignedInBackend",
]
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = env_list("LOGIN_LOCKOUT_BY", "username,ip_address")
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "agentdesk.signin.ThrottleHandler"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]
# Behind a reverse proxy, the number of proxies in front (their X-Forwarded-For entries).
AXES_IPWARE_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0) or None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"] if AXES_IPWARE_PROXY_COUNT else ["REMOTE_ADDR"]
)

# -- transport security and browser policies -------------------------------------------------------
HTTPS = PUBLIC_BASE_URL.startswith("https://")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS and env_bool("SECURE_HSTS_PRELOAD", True)
if AXES_IPWARE_PROXY_COUNT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /healthz is what a load balancer asks, often over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (django.middleware.csp): scripts and styles from our
# own origin only, no inline code or style attributes, sockets to our own origin, never framed.
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "font-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

# -- i18n, static ------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every request otherwise
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
FILE_UPLOAD_TEMP_DIR = None

# -- uploads: refused in words before they are stored (docs/import.md, "Limits") -----------------
# Any uploaded file over this is skipped while the request is parsed (campaigns.upload_handlers).
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# A sheet with more columns is refused: the mapping page has a select per column.
SHEET_MAX_COLUMNS = env_int("SHEET_MAX_COLUMNS", 200, minimum=2)
# A workbook up to this size is converted to CSV during the upload request (about 4 s); a bigger
# one only its first rows there, and whole when its dry run starts (campaigns.workbooks).
WORKBOOK_INLINE_BYTES = env_int("WORKBOOK_INLINE_BYTES", 8 * 1024 * 1024, minimum=0)
# The browser sends a big sheet in pieces of this size (campaigns.resumable: progress, and a
# dropped connection resumes); a piece is read into memory, so it stays under the body limit.
UPLOAD_CHUNK_BYTES = env_int("UPLOAD_CHUNK_BYTES", 4 * 1024 * 1024, minimum=64 * 1024)
# A resumable upload nobody added to for this long is deleted (its partial file too).
UPLOAD_RESUME_HOURS = env_int("UPLOAD_RESUME_HOURS", 24, minimum=1)
FILE_UPLOAD_HANDLERS = [
    "campaigns.upload_handlers.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
FILE_UPLOAD_MAX_MEMORY_SIZE = 2621440  # Django's 2.5 MB: a bigger file streams to a temporary file
# Bodies other than files (the intake API's JSON, forms); the intake answers 413 in JSON beyond it.
DATA_UPLOAD_MAX_MEMORY_SIZE = max(10 * 1024 * 1024, UPLOAD_CHUNK_BYTES + 64 * 1024)
# The mapping form posts one field per column.
DATA_UPLOAD_MAX_NUMBER_FIELDS = max(1000, SHEET_MAX_COLUMNS + 100)

# -- logging: credentials never reach a log (providers log method, path and status only) ---------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Every line of every process goes through RedactSecrets: no webhook secret, no token.
    "filters": {"redact": {"()": "agentdesk.logredact.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # axes: lockouts and failures are WARNING; its INFO lines repeat on every sign-in.
    "loggers": {"django.channels.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
