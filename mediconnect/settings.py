"""MediConnect settings, read from the environment (and a `.env` file when present)."""

import datetime
import ipaddress
import os
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]"]),
    ALLOWED_ORIGINS=(list, []),
    TIME_ZONE=(str, "Asia/Dhaka"),
    ACCESS_TOKEN_MINUTES=(int, 15),
    REFRESH_TOKEN_DAYS=(int, 7),
    CHANNEL_LAYER=(str, "core"),
)
# ENV_FILE names the file to read instead of `.env`; empty reads none (the settings tests use that).
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if _env_file:
    environ.Env.read_env(_env_file, overwrite=False)

DEBUG = env("DEBUG")
# The key comes from SECRET_KEY, else from the file SECRET_KEY_FILE names (`make run` generates one
# into .secret_key). There is no built-in key: one anybody can read in the repository would sign
# sessions and tokens anybody can forge. With DEBUG on and no key, a random one lasts this process.
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY and env("SECRET_KEY_FILE", default=""):
    SECRET_KEY = Path(env("SECRET_KEY_FILE")).read_text().strip()
if not SECRET_KEY and DEBUG:
    SECRET_KEY = get_random_secret_key()
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env("ALLOWED_HOSTS")
# Browser origins allowed to open the WebSocket, besides the site's own host.
ALLOWED_ORIGINS = env("ALLOWED_ORIGINS")
CSRF_TRUSTED_ORIGINS = [o for o in ALLOWED_ORIGINS if "://" in o]

INSTALLED_APPS = [
    "daphne",
    "mediconnect.pages.admin_site.ClinicAdminConfig",  # django.contrib.admin, with one notion of admin
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    # Background and scheduled work (reminders, offline email/SMS): django-tasks, the backport of
    # Django 6's tasks framework, on its database backend; `manage.py run_worker` runs it.
    "django_tasks",
    "django_tasks_db",
    "accounts",
    "notifications",
    "appointments",
    "documents",
    "queues",
    "visits",
    "mediconnect",
]

MIDDLEWARE = [
    # Counts and times every request Django answers, for GET /metrics (mediconnect/operations/metrics.py).
    "mediconnect.operations.metrics.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "mediconnect.operations.cache_control.NoStoreMiddleware",
    # A database or Redis outage met in a view: 503 (JSON under /api/), not a 500 page.
    "mediconnect.operations.outage.OutageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mediconnect.urls"
ASGI_APPLICATION = "mediconnect.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: a SQLite file by default; DATABASE_URL switches to PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # WAL lets readers run beside the one writer; IMMEDIATE makes every
            # transaction take the write lock up front, so concurrent writers
            # queue behind the busy timeout instead of failing "database is locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    # A file, not memory, so that live-server tests in other processes share it.
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"mediconnect-test-{os.getpid()}.sqlite3")
    }
else:
    # psycopg's pool (Django's own support, psycopg_pool): each request's sync code runs on a thread
    # lent to it alone (mediconnect/server/http_handler.py), and socket handlers on channels' one sync
    # thread; the pool lends a connection per request instead and takes it back at its end,
    # never holding more than DB_POOL_MAX_SIZE per process. A request waits DB_POOL_TIMEOUT seconds
    # for a free one, then fails with a database error. The pool drops a connection that comes back
    # broken, but one that died while it sat in the pool (PostgreSQL restarted while the process was
    # idle) would fail the request it is lent to with a 503: DB_HEALTH_CHECKS (on by default) has the
    # pool check each one before lending it and replace a dead one (Django passes the pool
    # `check=ConnectionPool.check_connection`: an empty query, one more round trip per request and
    # socket connect).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool refuses persistent connections
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_HEALTH_CHECKS", default=True)
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", default=1),
        "max_size": env.int("DB_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=5.0),
    }
    # One test database per test run, so that two runs on one machine never share one.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/login/"
# Where each role lands after login (accounts.views.home_for): the portals this floor wires up.
PORTAL_FOR_ROLE = {"ADMIN": "/admin/", "DOCTOR": "/doctor/", "PATIENT": "/patient/"}
# A password-reset link works once and for this long (Django's default is three days).
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=60 * 60)
# Reset emails one address receives per hour at most (the form answers the same beyond it).
PASSWORD_RESET_EMAILS_PER_HOUR = env.int("PASSWORD_RESET_EMAILS_PER_HOUR", default=3)

# Email (password reset, offline notifications): EMAIL_URL picks the backend, e.g.
# smtp+tls://user:password@smtp.example.com:587; the default logs each message's recipients and
# subject, never its body.
# (EMAIL_BACKEND, EMAIL_HOST, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, …)
_email = env.email_url("EMAIL_URL", default="consolemail://")
if _email["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend":
    # Recipients and subjects only: a whole message in the log would hand out reset links (core/mail.py).
    _email["EMAIL_BACKEND"] = "core.mail.LogEmailBackend"
vars().update(_email)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="MediConnect <no-reply@localhost>")
# Seconds an SMTP connection may block (Django's default is forever): a worker's claim on an email
# lasts TASK_LEASE_SECONDS, and a hung mail server must fail the attempt well within it.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=10.0)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Content-Security-Policy on every page (django-csp): scripts, styles and connections from this
# site only, no inline script or style, no plugins, not framed. 'self' in connect-src covers the
# site's own ws:// and wss:// socket in current browsers (CSP Level 3). The installable app's
# service worker (/sw.js) and manifest come from this site too.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF],
        "manifest-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("bn", "বাংলা")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# `collectstatic` gathers every app's files here; nginx serves them in a cluster (deploy/).
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
# Deployed (DEBUG off), static files carry a hash of their content in their names
# (`js/socket.3f2a….js`, the `{% static %}` tag writes them, ES module imports included), so a
# proxy may cache them for a year and a new release is fetched at once. That needs `collectstatic`
# first (`make run` does it); the test run and DEBUG serve the files from the apps, unhashed.
STATICFILES_MANIFEST = env.bool("STATICFILES_MANIFEST", default=not DEBUG)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "mediconnect.server.static_files.HashedStaticFilesStorage"
        if STATICFILES_MANIFEST
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Clinical documents (contract v1.2): the bytes live under FILES_ROOT, a private directory that no
# URL maps to (never under STATIC_ROOT): they leave only through a signed, short-lived link
# (FILE_LINK_SECONDS), served by Django or, when nginx is in front, handed to it with X-Accel-Redirect
# under FILES_X_ACCEL_PREFIX (an `internal` location of nginx's; empty: Django sends the bytes).
FILES_ROOT = Path(env("FILES_ROOT", default=str(BASE_DIR / "private-media")))
# FILES_GROUP_READABLE: files 0640 and directories 0750 instead of owner-only, for an nginx that runs
# as another user in FILES_ROOT's group (deploy/cluster.py sets it when run as root).
_files_group = env.bool("FILES_GROUP_READABLE", default=False)
STORAGES["documents"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    # base_url None: the storage has no public URL.
    "OPTIONS": {
        "location": str(FILES_ROOT),
        "base_url": None,
        "file_permissions_mode": 0o640 if _files_group else 0o600,
        "directory_permissions_mode": 0o750 if _files_group else 0o700,
    },
}
FILE_MAX_BYTES = env.int("FILE_MAX_BYTES", default=10 * 1024 * 1024)
FILE_LINK_SECONDS = env.int("FILE_LINK_SECONDS", default=60)
FILES_X_ACCEL_PREFIX = env("FILES_X_ACCEL_PREFIX", default="")
# FILES_STORAGE=s3 keeps the bytes in an S3 bucket (FILES_S3_BUCKET; FILES_S3_ENDPOINT_URL for an
# S3-compatible server; FILES_S3_REGION), for nodes on several machines. Credentials come the way
# boto3 finds them (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, an instance role).
# Objects are private, have no URL and are streamed through the signed link's view.
FILES_STORAGE = env("FILES_STORAGE", default="filesystem")
if FILES_STORAGE == "s3":
    if FILES_X_ACCEL_PREFIX:
        raise ImproperlyConfigured("FILES_X_ACCEL_PREFIX serves files from FILES_ROOT: leave it empty with S3.")
    STORAGES["documents"] = {
        "BACKEND": "documents.s3.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": env("FILES_S3_BUCKET"),
            "endpoint_url": env("FILES_S3_ENDPOINT_URL", default=None),
            "region_name": env("FILES_S3_REGION", default=None),
        },
    }
elif FILES_STORAGE != "filesystem":
    raise ImproperlyConfigured(f"FILES_STORAGE is filesystem or s3, not {FILES_STORAGE!r}.")
# Uploads stream to a temporary file (documents.uploads): file bytes never count against this, which
# bounds the other fields of a form and urlencoded bodies only (Django's default, written out).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# The virus scanner: clamd at tcp://host:port or unix:///path. Empty: files are available at once.
# A file waits in SCANNING until the task worker has had clamd check it; while clamd is away the
# scan is tried again after FILE_SCAN_RETRY_SECONDS, doubling up to an hour.
CLAMD_URL = env("CLAMD_URL", default="")
CLAMD_TIMEOUT = env.float("CLAMD_TIMEOUT", default=30.0)
FILE_SCAN_RETRY_SECONDS = env.int("FILE_SCAN_RETRY_SECONDS", default=30)
# `manage.py prune` deletes the bytes of files removed (DELETE) more than this many days ago; the
# record and its access log stay. Empty (the default): removed files keep their bytes for good.
FILE_RETENTION_DAYS = env.int("FILE_RETENTION_DAYS", default=None)

# Channel layer: in-memory by default; REDIS_URL switches to Redis so that
# several server processes share groups. Each process receives on one channel (its hub's, see
# mediconnect/realtime/hub.py), so that channel carries every group message the process hears: its
# capacity is sized for bursts, not for one socket.
REDIS_URL = env("REDIS_URL", default="")
CHANNEL_LAYER_CAPACITY = env.int("CHANNEL_LAYER_CAPACITY", default=10000)
if REDIS_URL:
    import redis.exceptions

    _layer_backend = {
        "core": "channels_redis.core.RedisChannelLayer",
        "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    }[env("CHANNEL_LAYER")]
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _layer_backend,
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        # The core layer's receive blocks in Redis for 5 s (BZPOPMIN); the client's
                        # own read timeout must outlast it, or an idle process reads a timeout
                        # exactly when Redis answers "nothing yet" (redis-py's default is also 5 s).
                        "socket_timeout": env.float("REDIS_SOCKET_TIMEOUT", default=10.0),
                        "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", default=2.0),
                        "socket_keepalive": True,
                        # Pushes from many request threads at once share this pool.
                        "max_connections": env.int("REDIS_MAX_CONNECTIONS", default=500),
                        # A pooled connection from before a Redis restart fails on first use
                        # ("Connection closed by server"): retry such a command once on a fresh
                        # connection, so the first handshake after Redis returns is served.
                        # Not timeouts: a hung Redis would only be waited on twice.
                        "retry_on_error": [redis.exceptions.ConnectionError],
                    }
                ],
                "prefix": env("CHANNEL_LAYER_PREFIX", default="mediconnect"),
            },
        }
    }
    if env("CHANNEL_LAYER") == "core":
        CHANNEL_LAYERS["default"]["CONFIG"].update({"capacity": CHANNEL_LAYER_CAPACITY, "expiry": 60})
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": CHANNEL_LAYER_CAPACITY}}
    }

# Cache (Django's): the login-failure and sign-up counters. Redis when REDIS_URL is set, so that
# every server process counts together, under keys of its own prefix (CACHE_KEY_PREFIX, by default
# the channel layer's with "-cache"); per process in memory otherwise. Short timeouts: a hung Redis
# must not hold up a sign-in, and the throttle lets requests through while its cache is unreachable.
_layer_prefix = env("CHANNEL_LAYER_PREFIX", default="mediconnect")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", default=_layer_prefix + "-cache"),
            "OPTIONS": {
                "socket_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0),
                "socket_connect_timeout": env.float("CACHE_SOCKET_TIMEOUT", default=1.0),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "mediconnect"}}


def _seconds(value: str, name: str) -> int:
    """A duration: whole seconds (`900`) or a number with a unit `s`, `m`, `h` or `d` (`15m`)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip().lower()
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    if not number.isdigit() or int(number) * unit <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive duration such as 900 or 15m, not {value!r}.")
    return int(number) * unit


# Reminders (contract v1.1): before each active appointment, one APPOINTMENT_REMINDER per offset,
# e.g. `24h,2h` (units s, m, h, d), measured back from the appointment's start in TIME_ZONE. Empty:
# no reminders. They are planned as rows when an appointment is booked and sent by the task worker.
def _offsets(value: str) -> list[int]:
    offsets = []
    for part in value.split(","):
        if not part.strip():
            continue
        if not re.fullmatch(r"\s*\d+\s*[smhd]\s*", part, flags=re.IGNORECASE):
            raise ImproperlyConfigured(
                f"REMINDER_OFFSETS must be durations with a unit (s, m, h, d) separated by commas, "
                f"such as 24h,2h; {part.strip()!r} is not one."
            )
        offsets.append(_seconds(part, "REMINDER_OFFSETS"))
    return sorted(set(offsets), reverse=True)


REMINDER_OFFSETS = _offsets(env("REMINDER_OFFSETS", default="24h,2h"))
# Optional morning digest for doctors: at this clinic time (HH:MM) each doctor with appointments that
# day gets one notification listing how many and the first time. Empty (the default): off.
DOCTOR_DIGEST_AT = env("DOCTOR_DIGEST_AT", default="").strip()
if DOCTOR_DIGEST_AT:
    try:
        DOCTOR_DIGEST_AT = datetime.datetime.strptime(DOCTOR_DIGEST_AT, "%H:%M").strftime("%H:%M")
    except ValueError as exc:
        raise ImproperlyConfigured(f"DOCTOR_DIGEST_AT must be a time such as 07:30, not {DOCTOR_DIGEST_AT!r}.") from exc
# A worker that claimed a reminder or a delivery and died holds it this long; then another takes it.
TASK_LEASE_SECONDS = env.int("TASK_LEASE_SECONDS", default=30)
# Offline delivery (contract v1.1): a user with no open socket gets cancellations, reschedules and
# reminders by email (EMAIL_URL, when notify_email) and SMS (SMS_BACKEND, when notify_sms and a
# phone). A failed send is retried with backoff (DELIVERY_RETRY_SECONDS doubling, up to
# DELIVERY_MAX_ATTEMPTS); the stored notification stays whatever happens.
SMS_BACKEND = env("SMS_BACKEND", default="notifications.sms.ConsoleSMSBackend")
SMS_HTTP_URL = env("SMS_HTTP_URL", default="")
SMS_HTTP_TOKEN = env("SMS_HTTP_TOKEN", default="")
SMS_HTTP_SENDER = env("SMS_HTTP_SENDER", default="MediConnect")
DELIVERY_MAX_ATTEMPTS = env.int("DELIVERY_MAX_ATTEMPTS", default=6)
DELIVERY_RETRY_SECONDS = env.int("DELIVERY_RETRY_SECONDS", default=30)

# The task queue: django-tasks' database backend. Tasks are rows in this database, taken by
# `manage.py run_worker` processes (any number, on any machine sharing the database) with
# SELECT ... FOR UPDATE SKIP LOCKED.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Login throttling: after LOGIN_FAILURES_PER_EMAIL failed sign-ins for one email, or
# LOGIN_FAILURES_PER_ADDRESS from one client address, within LOGIN_FAILURE_WINDOW (from the first
# failure), the token endpoint and /login/ answer 429 for that email or address until the window ends.
LOGIN_FAILURES_PER_EMAIL = env.int("LOGIN_FAILURES_PER_EMAIL", default=10)
LOGIN_FAILURES_PER_ADDRESS = env.int("LOGIN_FAILURES_PER_ADDRESS", default=30)
LOGIN_FAILURE_WINDOW = _seconds(env("LOGIN_FAILURE_WINDOW", default="15m"), "LOGIN_FAILURE_WINDOW")
# Sign-ups (API and portal together) per client address: `N/sec|min|hour|day`, or `off`.
REGISTER_RATE = env("REGISTER_RATE", default="20/min")
if not re.fullmatch(r"off|\d+/(s|sec|m|min|h|hour|d|day)", REGISTER_RATE.strip().lower()):
    raise ImproperlyConfigured(f"REGISTER_RATE must look like 20/min (or off), not {REGISTER_RATE!r}.")
# Proxies (IP addresses or networks, comma separated) whose X-Forwarded-For is believed: a request
# from one of them counts as coming from the rightmost address in that header that is not one of
# them. From anyone else the header is ignored (it is the client's to forge).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is not an IP address or network.") from exc

# GET /metrics is served to loopback clients, and to anyone sending `Authorization: Bearer
# <METRICS_TOKEN>` when it is set (empty: no token is accepted). A scraper on another machine uses it.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# After a commit, the request hands its pushes to the channel layer and waits at most this long
# (seconds): a hung Redis costs a request no more. A push not sent by then is dropped; the stored
# events are the truth, and sockets fill the gap from them (see core/outbox.py).
PUSH_TIMEOUT_SECONDS = env.float("PUSH_TIMEOUT_SECONDS", default=0.5)

# The largest client frame on /ws/; a larger one closes the socket with 1009. daphne enforces it
# (`--websocket-max-message-size`, as the Makefile and the tests start it); the consumer checks too.
WS_MAX_MESSAGE_BYTES = 64 * 1024
# Per-client bounds on /ws/ (contract v1.1 "Socket limits and resync"). A user's open sockets across
# every server process: one more closes their oldest with 4429. A resume that would replay more
# events than WS_REPLAY_MAX (or from events no longer stored, or older than EVENT_RETENTION_DAYS,
# default 30) gets `resync` instead. A socket whose frames waiting to be sent pass
# WS_MAX_BACKLOG_BYTES (a client that does not read) is dropped; the client resumes later.
WS_MAX_SOCKETS_PER_USER = env.int("WS_MAX_SOCKETS_PER_USER", default=10)
WS_REPLAY_MAX = env.int("WS_REPLAY_MAX", default=500)
WS_MAX_BACKLOG_BYTES = env.int("WS_MAX_BACKLOG_BYTES", default=1024 * 1024)

# Retention: `manage.py prune` (run it daily, e.g. from cron) deletes stored events older than
# EVENT_RETENTION_DAYS (a socket resuming from before them gets `resync`), idempotency records
# older than IDEMPOTENCY_RETENTION_HOURS (a repeat of the request after that books again), and
# expired refresh tokens with their blacklist entries. The appointments' audit trail is kept.
EVENT_RETENTION_DAYS = env.int("EVENT_RETENTION_DAYS", default=30)
IDEMPOTENCY_RETENTION_HOURS = env.int("IDEMPOTENCY_RETENTION_HOURS", default=24)

# The admin shows an appointment's audit trail read-only: no "revert" past the services.
SIMPLE_HISTORY_REVERT_DISABLED = True

# The clinic's name at the head of every prescription's PDF.
CLINIC_NAME = env("CLINIC_NAME", default="MediConnect Clinic")

# The free-slot grid the portals offer (advisory: bookings off the grid are accepted).
CLINIC_HOURS = {
    "start": datetime.time.fromisoformat(env("CLINIC_OPENS", default="09:00")),
    "end": datetime.time.fromisoformat(env("CLINIC_CLOSES", default="17:00")),
    "slot_minutes": env.int("SLOT_MINUTES", default=15),
}
# Active (pending or confirmed) appointments a patient may book with one doctor on one day; one more
# is a 409. Doctors and staff booking for a patient may go beyond it.
BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY = env.int("BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY", default=2)
if BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY < 1:
    raise ImproperlyConfigured("BOOKINGS_PER_PATIENT_PER_DOCTOR_DAY must be 1 or more.")

# A socket refreshes its presence every HEARTBEAT seconds; one not refreshed for TTL seconds
# (its process died) no longer counts as online. Offline delivery does not wait for the TTL: a
# cancellation to a user with no heartbeat after it within two HEARTBEATs goes by email and SMS
# (the task worker waits that long, so it must run with the server processes' HEARTBEAT).
PRESENCE_TTL_SECONDS = env.int("PRESENCE_TTL_SECONDS", default=60)
PRESENCE_HEARTBEAT_SECONDS = env.int("PRESENCE_HEARTBEAT_SECONDS", default=20)

REST_FRAMEWORK = {
    # JWT first: its WWW-Authenticate header makes a missing or bad token a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.LanguageJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "mediconnect.api.pagination.Pagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # JSON within bounds (mediconnect/api/parsers.py): a hostile body is a 400, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "mediconnect.api.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # Every error status each operation can answer, and times as HH:MM (mediconnect/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "mediconnect.api.schema.MediConnectAutoSchema",
    "EXCEPTION_HANDLER": "mediconnect.api.errors.exception_handler",
}

SIMPLE_JWT = {
    # ACCESS_TOKEN_SECONDS, when set, wins: tests use it to see tokens expire under open sockets.
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("ACCESS_TOKEN_SECONDS", default=0))
    or timedelta(minutes=env("ACCESS_TOKEN_MINUTES")),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env("REFRESH_TOKEN_DAYS")),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "MediConnect API",
    "DESCRIPTION": "Appointments, notifications and live doctor queues. "
    "Authenticate with `POST /api/auth/token/` and send `Authorization: Bearer <access>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two `status` enums (an appointment's, a file's): each its own name in the schema.
    "ENUM_NAME_OVERRIDES": {
        "StatusEnum": "appointments.models.Status",
        "FileStatusEnum": "documents.models.File.Status",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # pikepdf (documents' PDF checks) announces its logger bridge at INFO in every process; WeasyPrint
    # (prescriptions' PDFs) logs each step of every rendering at INFO.
    "loggers": {"pikepdf": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}

if not DEBUG:
    # A deployment is served over HTTPS (TLS ends at its proxy). LOCAL_HTTP=true is `make run`'s
    # plain http://127.0.0.1 server, where an HTTPS redirect and Secure cookies would lock users out.
    _https = not env.bool("LOCAL_HTTP", default=False)
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=_https)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=_https)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=_https)
    # Machines ask a node itself over plain HTTP (the launcher's, nginx's or a load balancer's health
    # check, Prometheus scraping /metrics): a redirect to https:// is no answer to them.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if _https else 0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Video visits (contract v1.2): the ICE servers handed to a call's two participants. TURN relays
# media through coturn with its shared-secret scheme (TURN_SECRET = coturn's static-auth-secret;
# credentials expire TURN_TTL_SECONDS after they are handed out). None configured: `ice_servers` is
# empty, and two browsers on one network connect directly (host candidates).
TURN_URLS = env.list("TURN_URLS", default=[])
STUN_URLS = env.list("STUN_URLS", default=[])
TURN_SECRET = env("TURN_SECRET", default="")
TURN_TTL_SECONDS = env.int("TURN_TTL_SECONDS", default=3600)
# The visit page asks for relay-only ICE (no direct path: both sides' addresses stay hidden from each
# other, all media through TURN); `/visit/{id}/?relay=1` asks for it on one page.
VIDEO_FORCE_RELAY = env.bool("VIDEO_FORCE_RELAY", default=False)

# Web Push (contract v1.2, docs/push.md): every stored notification also goes to its user's browser
# subscriptions, signed with this VAPID key (RFC 8292): VAPID_PRIVATE_KEY (a PEM, or the raw 32-byte
# P-256 private key in base64url), else the file VAPID_PRIVATE_KEY_FILE names (`make run` generates
# one). VAPID_SUBJECT (`mailto:` or `https:`) is the contact the push services see. No key: Web Push
# is off (GET /api/push/key/ answers 503, nothing is sent; `manage.py check` warns). Endpoints must be
# https:// on a public address, unless they start with a prefix of PUSH_ENDPOINT_ALLOW (tests).
VAPID_PRIVATE_KEY = env("VAPID_PRIVATE_KEY", default="").strip()
if not VAPID_PRIVATE_KEY and env("VAPID_PRIVATE_KEY_FILE", default=""):
    VAPID_PRIVATE_KEY = Path(env("VAPID_PRIVATE_KEY_FILE")).read_text().strip()
VAPID_SUBJECT = env("VAPID_SUBJECT", default="").strip()
if VAPID_SUBJECT and not VAPID_SUBJECT.startswith(("mailto:", "https://")):
    raise ImproperlyConfigured(f"VAPID_SUBJECT must be a mailto: or https: URL, not {VAPID_SUBJECT!r}.")
if VAPID_PRIVATE_KEY and not VAPID_SUBJECT:
    # `make run` and DEBUG: a local contact; a deployment names its own (push services may reject localhost).
    if not (DEBUG or env.bool("LOCAL_HTTP", default=False)):
        raise ImproperlyConfigured("VAPID_SUBJECT (mailto: or https:) must be set with a VAPID key.")
    VAPID_SUBJECT = "mailto:webpush@localhost"
PUSH_ENDPOINT_ALLOW = [p for p in env.list("PUSH_ENDPOINT_ALLOW", default=[]) if p]
# Each push: this long at most (connect and answer); a message not accepted is tried again with
# backoff (WEBPUSH_RETRY_SECONDS doubling, or the service's Retry-After when longer, capped at an hour)
# up to WEBPUSH_MAX_ATTEMPTS times.
WEBPUSH_TIMEOUT_SECONDS = env.float("WEBPUSH_TIMEOUT_SECONDS", default=10.0)
# The worker sends this many pushes at once (threads), so a slow push service holds up only its own.
WEBPUSH_CONCURRENCY = env.int("WEBPUSH_CONCURRENCY", default=8)
WEBPUSH_RETRY_SECONDS = env.int("WEBPUSH_RETRY_SECONDS", default=10)
WEBPUSH_MAX_ATTEMPTS = env.int("WEBPUSH_MAX_ATTEMPTS", default=6)
