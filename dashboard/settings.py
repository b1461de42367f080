"""Settings for the LXD fleet dashboard.

Everything comes from the environment; the embedded defaults (SQLite, in-memory channel
layer, a secret key generated on first run and kept in the data directory) let a newcomer
run the dashboard with no configuration at all.
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

from dashboard import database, datadir

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("DASHBOARD_DATA_DIR", BASE_DIR / "var"))
DATABASE_PATH = Path(os.environ.get("DASHBOARD_DB", DATA_DIR / "dashboard.sqlite3"))
# Private (0700) or we refuse to start; the database file is created 0600.
datadir.prepare(DATA_DIR, DATABASE_PATH)


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _secret_from_file(name: str, make=lambda: secrets.token_urlsafe(50)) -> str:
    """A per-installation secret, created once with owner-only permissions."""
    path = DATA_DIR / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def _fernet_key() -> str:
    # A real Fernet key, used as it is (hosts/crypto.py); an older installation's file
    # holds a passphrase, which still works (stretched with scrypt).
    from hosts.domain.crypto import generate_key

    return generate_key()


class ImproperlyConfiguredError(RuntimeError):
    pass


# DASHBOARD_PRODUCTION=1: secrets must come from the environment, cookies are secure, HTTPS
# is enforced (behind a TLS-terminating proxy set DASHBOARD_BEHIND_PROXY=1).
PRODUCTION = _env_bool("DASHBOARD_PRODUCTION", False)
DEBUG = _env_bool("DASHBOARD_DEBUG", False) and not PRODUCTION
if PRODUCTION:
    missing = [
        name for name in ("DJANGO_SECRET_KEY", "DASHBOARD_ENCRYPTION_KEYS") if not os.environ.get(name)
    ]
    if missing:
        raise ImproperlyConfiguredError(
            f"DASHBOARD_PRODUCTION=1 needs {', '.join(missing)} in the environment"
        )
# Otherwise a key is generated into the data directory on first run.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or _secret_from_file("secret_key")
# Keys that encrypt client private keys at rest: the first encrypts, all decrypt
# (see `manage.py rotate_encryption_key`).  Defaults to a generated per-installation key.
DASHBOARD_ENCRYPTION_KEYS = _env_list("DASHBOARD_ENCRYPTION_KEYS", []) or [
    _secret_from_file("encryption_key", _fernet_key)
]

ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "dashboard.apps.AuditedAdminConfig",  # django.contrib.admin, every change audited (hosts/admin_site.py)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    # {% partialdef %}: a page and the fragment htmx swaps live in one template
    "template_partials",
    "axes",
    "hosts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dashboard.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every view needs a login unless it is explicitly marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Turns a refused (locked out) login into the login page with the reason; last, as axes asks.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
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
                "hosts.views.access.role_context",
            ],
        },
    },
]

# SQLite (DASHBOARD_DB) unless DATABASE_URL or DASHBOARD_DB_NAME names a PostgreSQL database
# (dashboard/database.py): several web processes need one they can all reach.
try:
    DATABASES = {"default": database.from_environ(os.environ, DATABASE_PATH)}
except database.DatabaseConfigError as exc:
    raise ImproperlyConfiguredError(str(exc)) from None

if os.environ.get("REDIS_URL"):
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # Every channel of one process shares one Redis list (channels-redis), so the
            # capacity bounds what waits for a whole process, not for one socket: a burst of
            # messages (a bulk action on a hundred instances) must not be dropped.
            # redis-py 8 gives every read a 5 s socket timeout by default: exactly how long
            # channels-redis' blocking pop waits on an idle channel, so an idle hub's receive
            # failed every 5 s.  Longer than that pop, still bounded (a Redis that vanished).
            "CONFIG": {
                "hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 15}],
                "capacity": 5000,
            },
        }
    }
else:
    # The same capacity: each process's hub is one channel, which the in-memory layer caps at
    # 100 messages by default and then drops what comes (silently: a page missed a change).
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 5000}}
    }

# The events relay (one upstream /1.0/events connection per host).  "embedded": inside the
# web process, started by the first browser socket; only right with the in-memory layer
# and one web process.  "external": `manage.py relay` runs it, once per deployment, and
# web workers (any number) share it through the cross-process channel layer.
DASHBOARD_RELAY = os.environ.get("DASHBOARD_RELAY") or (
    "external" if os.environ.get("REDIS_URL") else "embedded"
)

# The live model (hosts/live/model.py): status and IPs follow LXD's events at once; the
# counters of running instances (memory, CPU, network) come from one state listing per host
# (recursion=2, a state query per running instance on the host) this often.
try:
    DASHBOARD_COUNTERS_SECONDS = float(os.environ.get("DASHBOARD_COUNTERS_SECONDS", "10"))
except ValueError:
    DASHBOARD_COUNTERS_SECONDS = 0.0
if not 1 <= DASHBOARD_COUNTERS_SECONDS <= 3600:
    raise ImproperlyConfiguredError("DASHBOARD_COUNTERS_SECONDS must be a number of seconds from 1 to 3600")

# Browser sockets close when their login ends (hosts/socket_auth.py: signals over the channel
# layer); as a backstop each socket also re-checks its session this often (and at its expiry).
DASHBOARD_SOCKET_RECHECK_SECONDS = int(os.environ.get("DASHBOARD_SOCKET_RECHECK_SECONDS", "3600"))

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Login throttling (django-axes, see dashboard/login_throttle.py): after this many failed logins
# for a user name, or from one address, logins are refused for DASHBOARD_LOGIN_LOCK_SECONDS.
DASHBOARD_LOGIN_FAILURE_LIMIT = int(os.environ.get("DASHBOARD_LOGIN_FAILURE_LIMIT", "5"))
DASHBOARD_LOGIN_LOCK_SECONDS = int(os.environ.get("DASHBOARD_LOGIN_LOCK_SECONDS", "900"))
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = DASHBOARD_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=DASHBOARD_LOGIN_LOCK_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
# The lock lasts DASHBOARD_LOGIN_LOCK_SECONDS from the last counted failure; attempts during it
# are refused without extending it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "dashboard.login_throttle.client_address"
AXES_LOCKOUT_CALLABLE = "dashboard.login_throttle.locked_out"
# axes' AccessLog would keep a row for every successful login, forever; failures (AccessAttempt)
# expire with the lock.
AXES_DISABLE_ACCESS_LOG = True

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` puts the files a reverse proxy serves (with DASHBOARD_SERVE_STATIC=0): not
# in the data directory by default, which is private to the dashboard's user (datadir.py).
STATIC_ROOT = Path(os.environ.get("DASHBOARD_STATIC_ROOT", BASE_DIR / "staticfiles"))
DASHBOARD_SERVE_STATIC = _env_bool("DASHBOARD_SERVE_STATIC", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

SESSION_COOKIE_HTTPONLY = True
# A login lasts this long (Django's default is two weeks).
DASHBOARD_SESSION_SECONDS = int(os.environ.get("DASHBOARD_SESSION_SECONDS", str(12 * 3600)))
SESSION_COOKIE_AGE = DASHBOARD_SESSION_SECONDS
SESSION_COOKIE_SECURE = _env_bool("DASHBOARD_SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Sent on every response (dashboard/csp.py).  Scripts: our own files only (no inline script, no
# eval).  Styles allow 'unsafe-inline': templates set widths in style attributes (progress bars),
# htmx sets styles while it swaps, and xterm.js (a later console) injects its own; an injected
# style cannot run code.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "connect-src": ["'self'"],  # websockets to our own origin included
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if PRODUCTION:
    SECURE_SSL_REDIRECT = _env_bool("DASHBOARD_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("DASHBOARD_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("DASHBOARD_HSTS_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = _env_bool("DASHBOARD_HSTS_PRELOAD", True)
    if _env_bool("DASHBOARD_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# LXD timeouts (seconds): connect, then read.  A page that talks to a dead or hanging host
# must answer within about 1.5 s.
LXD_PAGE_TIMEOUT = (0.5, 1.0)
# Operations we follow to their end (create, stop with a grace period ...)
LXD_OPERATION_TIMEOUT = 120
# A copy or move between hosts: how long its LXD operations may run, and how many run at once
# in one process (a bulk move runs at most its own number in parallel, within this).
LXD_TRANSFER_TIMEOUT = int(os.environ.get("DASHBOARD_TRANSFER_TIMEOUT", "3600"))
DASHBOARD_TRANSFER_WORKERS = int(os.environ.get("DASHBOARD_TRANSFER_WORKERS", "4"))
# The largest answer read whole from a host (a JSON envelope; file downloads stream):
# enough for recursion=2 of thousands of instances.  A host that sends more is refused.
LXD_MAX_RESPONSE_BYTES = int(os.environ.get("DASHBOARD_LXD_MAX_RESPONSE_BYTES", 64 * 1024**2))

# Files: the largest upload accepted (HTTP 413 above it), and how much of a file is shown inline.
DASHBOARD_MAX_UPLOAD_BYTES = int(os.environ.get("DASHBOARD_MAX_UPLOAD_BYTES", 1024**3))
# Plain HTTP uploads (multipart form without JavaScript, raw PUT): daphne keeps the whole body in
# memory before the view runs, so they are capped lower; the page's websocket upload streams.
DASHBOARD_MAX_HTTP_UPLOAD_BYTES = int(os.environ.get("DASHBOARD_MAX_HTTP_UPLOAD_BYTES", 64 * 1024**2))
# Every other request body (forms, htmx posts): refused with 413 before daphne reads it when
# larger (dashboard/body_limit.py).  Django's own limit on form data, plus room for multipart framing.
DATA_UPLOAD_MAX_MEMORY_SIZE = 2621440  # Django's default, named here because the next line uses it
DASHBOARD_MAX_REQUEST_BODY_BYTES = int(
    os.environ.get("DASHBOARD_MAX_REQUEST_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE + 64 * 1024)
)
# Backups exported by the dashboard (by hand or on a schedule) go here: private like the data
# directory (created 0700, files 0600; refused when others can read it), checked when used.
DASHBOARD_BACKUP_DIR = Path(os.environ.get("DASHBOARD_BACKUP_DIR", DATA_DIR / "backups"))
# The largest backup file accepted for a restore (it streams: this bounds the host's disk, not memory).
DASHBOARD_MAX_BACKUP_UPLOAD_BYTES = int(os.environ.get("DASHBOARD_MAX_BACKUP_UPLOAD_BYTES", 64 * 1024**3))
# The backup scheduler: how often it looks for due schedules (and failed copies' leftovers).
DASHBOARD_SCHEDULER_TICK_SECONDS = float(os.environ.get("DASHBOARD_SCHEDULER_TICK_SECONDS", "20"))
# "No recent backup": instances whose newest backup made through the dashboard is older than this.
DASHBOARD_BACKUP_STALE_HOURS = int(os.environ.get("DASHBOARD_BACKUP_STALE_HOURS", "26"))
DASHBOARD_FILE_VIEW_BYTES = int(os.environ.get("DASHBOARD_FILE_VIEW_BYTES", 512 * 1024))
# Images: the largest image upload (streamed over a websocket to the host, which keeps it on its
# own disk until the last byte: the limit protects the host's disk, not the dashboard).
DASHBOARD_MAX_IMAGE_UPLOAD_BYTES = int(os.environ.get("DASHBOARD_MAX_IMAGE_UPLOAD_BYTES", 16 * 1024**3))

# Terminals (hosts/domain/terminal.py): open sessions per user and per instance (per web
# process), and how long a session may go without a keystroke before it is closed.
DASHBOARD_TERMINAL_SESSIONS_PER_USER = int(os.environ.get("DASHBOARD_TERMINAL_SESSIONS_PER_USER", "8"))
DASHBOARD_TERMINAL_SESSIONS_PER_INSTANCE = int(
    os.environ.get("DASHBOARD_TERMINAL_SESSIONS_PER_INSTANCE", "4")
)
DASHBOARD_TERMINAL_IDLE_SECONDS = int(os.environ.get("DASHBOARD_TERMINAL_IDLE_SECONDS", "1800"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DASHBOARD_LOG_LEVEL", "WARNING")},
}
