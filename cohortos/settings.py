"""Cohort-OS settings: one file, driven by the environment.

Every setting that differs between a laptop and production is read from an
environment variable of the same name; the defaults are the quick start's
(SQLite in the project folder, Celery eager, email to the console).
"""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    """Return the environment variable `name` read as a boolean ("1", "true", "yes", "on")."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    """Return the environment variable `name` split on commas, blanks dropped."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", default=False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Links in emails and the demo's printed URLs; follows HOST (`make run HOST=…`) unless set.
SITE_URL = os.environ.get("SITE_URL", f"http://{os.environ.get('HOST') or '127.0.0.1:8000'}").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "simple_history",
    "django_ratelimit",
    "applications",
    "scheduling",
    "orphans",
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
    "applications.middleware.htmx_auth_redirect",
    # Puts the request's user on every history row written during the request.
    "simple_history.middleware.HistoryRequestMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# The history is an audit: nobody rewrites it, not even by "reverting" through the admin.
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "cohortos.urls"
WSGI_APPLICATION = "cohortos.wsgi.application"
ASGI_APPLICATION = "cohortos.asgi.application"

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
                "applications.context_processors.cohorts",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that drops packets must not hold a webhook for the OS's default (minutes):
    # fail fast, and the view spools the body instead (scheduling/spool.py).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "3")))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; without a busy timeout a second writer fails at once
    # instead of waiting its turn.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out (username, IP) before the password is even checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling (django-axes), on both forms (/accounts/login/ and /admin/login/): five
# wrong passwords for one username from one IP lock that pair out for AXES_COOLOFF_TIME. An
# admin unlocks sooner by deleting the attempt in the Django admin (Axes → Access attempts)
# or with `manage.py axes_reset_username <name>`.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind the reverse proxy (docker-compose.yml's nginx) every request comes from the proxy:
# TRUSTED_PROXY_COUNT=1 makes axes read the client from X-Forwarded-For, which nginx sets.
# Never set it without a proxy that overwrites that header: clients could then pick their IP.
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
if TRUSTED_PROXY_COUNT:
    AXES_IPWARE_PROXY_COUNT = TRUSTED_PROXY_COUNT
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
else:
    AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

# Content-Security-Policy (django-csp): scripts, styles, fonts and fetches only from our own
# origin (htmx is served from our static files), no inline script or style, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}
# Permissions-Policy (django-permissions-policy): no page of ours needs these powerful features.
PERMISSIONS_POLICY = {
    feature: [] for feature in (
        "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "geolocation",
        "gyroscope", "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get",
        "screen-wake-lock", "usb", "xr-spatial-tracking",
    )
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Email: console by default so the quick start shows alerts in its own output.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Cohort-OS <noreply@cohortos.localhost>")

# Celery: with no REDIS_URL, tasks run eagerly in-process so the quick start needs no broker.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A broker that is down must not hang a webhook: fail fast, the periodic sweep catches up.
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "max_retries": 0,
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
}
CELERY_TASK_PUBLISH_RETRY = False
# Survives a Redis restart while holding an unacked message (celery 5.7; see the class).
CELERY_WORKER_CONSUMER = "cohortos.celery:BrokerLossConsumer"
# The safety net for alerts whose task was never published (broker down) or got lost.
CELERY_BEAT_SCHEDULE = {
    "send-pending-orphan-alerts": {
        "task": "orphans.tasks.send_pending_orphan_alerts",
        "schedule": 60.0,
        "options": {"expires": 55},  # a backlog of sweeps after an outage is one sweep's work
    },
    "drain-webhook-spool": {
        "task": "scheduling.tasks.drain_webhook_spool",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sweep-webhook-deliveries": {
        "task": "scheduling.tasks.sweep_webhook_deliveries",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "sync-calcom-due": {
        "task": "scheduling.tasks.sync_due_cohorts",
        "schedule": 300.0,  # finds cohorts whose last sync is older than CALCOM_SYNC_INTERVAL
        "options": {"expires": 290},
    },
    # Invitations whose task was never published, and automatic ones whose task was lost.
    "send-pending-invitations": {
        "task": "scheduling.tasks.send_pending_invitations",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "send-reminders": {
        "task": "scheduling.tasks.send_reminders",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
}

# The applicant's page (/i/<token>/): how long a link works, and how often it may be asked for
# (django-ratelimit rates, "count/period" with s, m, h or d), per token and per client IP.
APPLICANT_PAGE_DAYS = int(os.environ.get("APPLICANT_PAGE_DAYS", "90"))
APPLICANT_RATE_PER_IP = os.environ.get("APPLICANT_RATE_PER_IP", "60/m")
APPLICANT_RATE_PER_TOKEN = os.environ.get("APPLICANT_RATE_PER_TOKEN", "30/m")
APPLICANT_POST_RATE_PER_TOKEN = os.environ.get("APPLICANT_POST_RATE_PER_TOKEN", "10/h")
# Behind a proxy, the header holding the client's address (e.g. HTTP_X_REAL_IP), set by the proxy.
RATELIMIT_IP_META_KEY = os.environ.get("RATELIMIT_IP_META_KEY") or None
# The rate-limit counters live in the cache: Redis when there is one, so every worker counts
# together; per process otherwise (the quick start).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
         "KEY_PREFIX": "cohortos", "TIMEOUT": 300,
         "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1}}
        if REDIS_URL else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
# django-ratelimit knows only django-redis by name (W001), though Django's own Redis cache
# increments atomically too; without Redis the per-process cache (E003) is the quick start's.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"] + ([] if REDIS_URL else ["django_ratelimit.E003"])

# Provider bodies are a few kB. A webhook body over this is refused (413) before a byte is
# read, and one must arrive within WEBHOOK_READ_SECONDS (408): a sender trickling a body
# holds a worker thread no longer than that (scheduling/bodies.py).
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_READ_SECONDS = float(os.environ.get("WEBHOOK_READ_SECONDS", "10"))

# Verified bodies that arrive while the database is unreachable wait here (scheduling/spool.py)
# until the drain imports them. Must be durable local disk (a volume in docker-compose.yml).
WEBHOOK_SPOOL_DIR = Path(os.environ.get("WEBHOOK_SPOOL_DIR", BASE_DIR / "var" / "webhook-spool"))
WEBHOOK_SPOOL_MAX_FILES = int(os.environ.get("WEBHOOK_SPOOL_MAX_FILES", "20000"))
WEBHOOK_SPOOL_MAX_BYTES = int(os.environ.get("WEBHOOK_SPOOL_MAX_BYTES", str(512 * 1024 * 1024)))
# How long a webhook key → secret pair read from the database may verify bodies while the
# database is down (per process).
WEBHOOK_SECRET_CACHE_SECONDS = int(os.environ.get("WEBHOOK_SECRET_CACHE_SECONDS", "900"))
# The sweep: a delivery still "received" after this many seconds was interrupted; failed ones
# are retried with exponential backoff up to WEBHOOK_MAX_ATTEMPTS attempts.
WEBHOOK_STUCK_AFTER_SECONDS = int(os.environ.get("WEBHOOK_STUCK_AFTER_SECONDS", "120"))
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "8"))

# Cal.com API v2, for reconciliation (scheduling/providers/calcom_api.py). Point it at a local
# fake with CALCOM_API_URL=http://127.0.0.1:8765/v2 (README, "A local fake of Cal.com's API").
CALCOM_API_URL = os.environ.get("CALCOM_API_URL", "https://api.cal.com/v2").rstrip("/")
CALCOM_API_TIMEOUT = float(os.environ.get("CALCOM_API_TIMEOUT", "20"))
# Seconds between scheduled syncs of a cohort that has an API key (0 turns them off).
CALCOM_SYNC_INTERVAL = int(os.environ.get("CALCOM_SYNC_INTERVAL", "3600"))

# Fernet keys for encrypted model fields (Cohort.calcom_api_key), comma-separated, newest first
# (older ones still decrypt). Without it a key derived from SECRET_KEY is used and
# `check --deploy` warns: then a leaked SECRET_KEY also reveals the stored API keys.
FIELD_ENCRYPTION_KEY = env_list("FIELD_ENCRYPTION_KEY")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not DEBUG:
    # Production defaults are the safe ones (`manage.py check --deploy` is clean); each can be
    # turned down through its env var. Behind a TLS proxy, forward X-Forwarded-Proto: the SSL
    # redirect would otherwise answer Cal.com's webhook POSTs with a 301, a failed delivery (§5).
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # A webhook URL's key is a credential: every line shows it as …abcd (scheduling/log_masking.py).
    "filters": {"mask_webhook_keys": {"()": "scheduling.log_masking.MaskWebhookKeys"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["mask_webhook_keys"]}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's own handlers for these would print request paths unmasked: ours instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
