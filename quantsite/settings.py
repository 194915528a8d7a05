"""Quantsite settings. Every value comes from the environment (see README.md).

Embedded default: SQLite in WAL mode, django-q2 on the ORM broker, the in-memory channel
layer. Production: ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL`` (django-q2 broker and
channels-redis layer).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

from quantsite.env import env_bool, env_choice, env_float, env_int, env_list, env_rate, env_str
from quantsite.secret_keys import key_file_read, secrets_keys_load
from quantsite.security import (
    production_allowed_hosts_check,
    production_secret_key_check,
    proxy_ssl_header,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# development (the default: the embedded demo, `make run`, the tests: plain http on
# 127.0.0.1) or production (README "Production settings"): fails at startup without a
# strong DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS, with DEBUG on, and turns on https-only
# cookies, the https redirect and HSTS (the "security headers" block below).
DJANGO_ENV = env_choice("DJANGO_ENV", "development", ("development", "production"))
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env_bool("DJANGO_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off when DJANGO_ENV=production")
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if PRODUCTION:
    production_secret_key_check(SECRET_KEY)
if not SECRET_KEY:
    if not DEBUG and env_bool("DJANGO_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set")
    # Local/embedded use: a key stored beside the database, created once, never committed.
    import secrets

    SECRET_KEY = key_file_read(
        Path(env_str("QUANTSITE_DATA_DIR", str(BASE_DIR / "var"))) / "secret_key",
        lambda: secrets.token_urlsafe(50),
    )

# Alert channel secrets are encrypted at rest with QUANTSITE_SECRETS_KEY (Fernet keys,
# newest first; see quantsite/secret_keys.py): generated into the data folder in
# development, required in production (DJANGO_ENV=production).
QUANTSITE_SECRETS_KEYS = secrets_keys_load(
    env_str("QUANTSITE_SECRETS_KEY"),
    data_dir=Path(env_str("QUANTSITE_DATA_DIR", str(BASE_DIR / "var"))),
    production=PRODUCTION,
)

ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS",
    [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"],
)
if PRODUCTION:
    production_allowed_hosts_check(ALLOWED_HOSTS)
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_idempotency",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_q",
    "channels",
    "portfolio",
    "risk",
    "reporting",
    "operations",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Pages, JSON and CSV compressed for a client that accepts gzip (a dashboard page is
    # 200 to 600 KB of HTML and chart data, a fifth of that compressed). Before everything
    # that writes the body; Django's own, which pads each response against BREACH and
    # streams a streaming response compressed, but for binary downloads (Excel is a zip).
    "quantsite.compression.GZipTextMiddleware",
    "quantsite.security.WebsocketCSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # last, as django-axes requires: answers a locked-out login with its 429
    "axes.middleware.AxesMiddleware",
]

# Login throttling (django-axes) on every password check: the site login, the admin login
# and the API's password-for-token exchange. After QUANTSITE_LOGIN_FAILURE_LIMIT failed
# attempts for one username from one address, that pair is refused (429) for
# QUANTSITE_LOGIN_COOLOFF_MINUTES, even with the right password; a success resets the
# count. `python manage.py axes_reset` lifts every lockout.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("QUANTSITE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("QUANTSITE_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_IPWARE_PROXY_COUNT = env_int("QUANTSITE_API_NUM_PROXIES", 0, minimum=0) or None
AXES_COOLOFF_MESSAGE = "Too many failed logins for this user from this address: try again later."
AXES_VERBOSE = False
AXES_LOCKOUT_CALLABLE = "quantsite.lockout.lockout_response"

ROOT_URLCONF = "quantsite.urls"
ASGI_APPLICATION = "quantsite.asgi.application"
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
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
DATA_DIR = Path(env_str("QUANTSITE_DATA_DIR", str(BASE_DIR / "var")))
DATABASE_URL = env_str("DATABASE_URL")
# Every SQLite database gets these, whether it comes from the default path or from
# DATABASE_URL=sqlite:///... (dj-database-url gives no OPTIONS, and without them writers
# fail with "database is locked" under load).
SQLITE_OPTIONS = {
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of
    # failing mid-transaction with "database is locked".
    "transaction_mode": "IMMEDIATE",
    "timeout": 30,
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
    ),
}
if DATABASE_URL:
    try:
        _db = dj_database_url.parse(DATABASE_URL, conn_max_age=60)
    except Exception as exc:  # dj-database-url raises several types on a bad URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["OPTIONS"] = {**SQLITE_OPTIONS, **_db.get("OPTIONS", {})}
        _db["CONN_MAX_AGE"] = 0  # as the default route: a connection per request
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    _db = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env_str("QUANTSITE_SQLITE_PATH", str(DATA_DIR / "quantsite.sqlite3")),
        "OPTIONS": dict(SQLITE_OPTIONS),
    }
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: broker and channel layer ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# A task is killed after ``timeout`` seconds; the broker hands an unacknowledged task to
# another worker after ``retry`` seconds. timeout < retry, or a slow update would run
# twice; timeout above the longest update (a full replay of the bundled history takes a
# few minutes, hence the 300 s floor). catch_up off: a cluster that was down does not
# fire every missed update at once when it comes back.
Q_TIMEOUT = env_int("QUANTSITE_Q_TIMEOUT", 1800, minimum=300)
Q_RETRY = env_int("QUANTSITE_Q_RETRY", Q_TIMEOUT + 60, minimum=301)
if Q_RETRY <= Q_TIMEOUT:
    raise ImproperlyConfigured(
        f"QUANTSITE_Q_RETRY ({Q_RETRY}) must be above QUANTSITE_Q_TIMEOUT ({Q_TIMEOUT})"
    )
Q_CLUSTER = {
    "name": "quantsite",
    "workers": env_int("QUANTSITE_Q_WORKERS", 2, minimum=1),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": 1,
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL  # the Redis broker keeps the cluster stats in Redis
else:
    Q_CLUSTER["orm"] = "default"
    # With the ORM broker django-q2 keeps each cluster's heartbeat (its Stat, refreshed
    # every guard cycle, expiring after 3 s) in a Django cache. The default LocMem cache
    # is per process, so the web process (/readyz) could never see the cluster: a file
    # cache beside the database is shared by every process on the machine, with no
    # database writes twice a second and no extra service.
    Q_CLUSTER["cache"] = "qstat"

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "qstat": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "qstat"),
    },
}


def _redis_or(prefix: str, fallback: dict) -> dict:
    """A cache in Redis under ``prefix`` when ``REDIS_URL`` is set, else ``fallback``."""
    if not REDIS_URL:
        return fallback
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": prefix,
    }


# What the dashboard pages compute once per committed state (reporting.pages.common.
# state_cached): shared by every process, so the update's worker builds it once after a
# commit (reporting.pages.warm) and every web process serves it, and it survives a
# restart. Redis when there is one; else files beside the database (atomic writes, no
# extra service, and no writes into SQLite, which the update holds while it commits).
CACHES["pages"] = _redis_or(
    "quantsite-pages",
    {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "pagecache"),
        # one entry per page, section, strategy and chosen ticker of each portfolio
        "OPTIONS": {"MAX_ENTRIES": 5000},
    },
)

# --- auth, i18n, static -----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
WHITENOISE_USE_FINDERS = True

# --- security headers, cookies, CSP (README "Production settings") ------------------------
# Production serves https only: cookies never travel over plain http, an http request is
# redirected, and HSTS tells the browser to come back over https without asking. Behind a
# TLS-terminating proxy, DJANGO_SECURE_PROXY_SSL_HEADER names the header it sets (e.g.
# X-Forwarded-Proto), or Django sees http and redirects forever. Development (http on
# 127.0.0.1) keeps all of this off.
SECURE_PROXY_SSL_HEADER = proxy_ssl_header(
    "DJANGO_SECURE_PROXY_SSL_HEADER", env_str("DJANGO_SECURE_PROXY_SSL_HEADER")
)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", PRODUCTION)
# health probes come from the host or the orchestrator over plain http
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int(
    "DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600 if PRODUCTION else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
# Preload is a promise for the whole registrable domain (every subdomain https, for
# months, once the browsers ship the list), which only the domain's owner can make: off
# unless asked for, and deploy check W021 (its reminder) silenced while it is off.
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
# Lax, not Strict: Lax already keeps the cookies off every cross-site POST, fetch, frame and
# websocket, which is what CSRF needs; Strict would also drop them on a plain link from
# elsewhere (an alert e-mail or a chat message pointing at a strategy page), which would
# then open on the login form.
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# No page uses a device, sensor or payment API: every one is refused, for any origin.
PERMISSIONS_POLICY = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "browsing-topics",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "publickey-credentials-get",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
}
# Content-Security-Policy, in both modes (django-csp; quantsite.security adds the page's
# own ws:// or wss:// origin to connect-src). Scripts only from our static files: no
# inline script or handler, no eval. Plotly draws with data: images.
# Styles: <style> elements and stylesheets only from our static files (Plotly's own rules
# are served as static/css/plotly.css instead of the <style> it would inject), or with the
# request's nonce (the API's pages: DRF's code-highlighting CSS, Swagger UI's page CSS).
# style-src-attr 'unsafe-inline' because Plotly 3.3 writes style="..." attributes with
# setAttribute (a heatmap's image-rendering: pixelated, rich-text label sizes), and DRF's
# browsable API has them in its markup (its layout floats): refused, the correlation and
# other heatmaps are drawn blurred, cells smeared into each other (seen in Chromium).
# Attributes only: they run no script, and with no selectors they cannot read the page.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "style-src-attr": [UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
    }
}

# --- REST API: auth, throttles, schema (README "API") ------------------------------------
# Token first: an anonymous caller gets 401 with ``WWW-Authenticate: Token``. Session auth
# (the logged-in browser) enforces CSRF on unsafe methods. HTTP Basic is off: a password
# never travels with every request. A token is a knox token, stored as its SHA-512 digest.
REST_FRAMEWORK = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # capped: a limit beyond 1000 is served 1000 rows (an unbounded one overflowed SQLite)
    "DEFAULT_PAGINATION_CLASS": "quantsite.api.pagination.CappedLimitOffsetPagination",
    "PAGE_SIZE": 200,
    "DEFAULT_SCHEMA_CLASS": "quantsite.api.schema.AutoSchema",
    # Anonymous callers per client IP, signed-in users per user, token logins per IP.
    "DEFAULT_THROTTLE_CLASSES": [
        "quantsite.api.throttles.AnonThrottle",
        "quantsite.api.throttles.UserThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_rate("QUANTSITE_API_THROTTLE_ANON", "60/minute"),
        "user": env_rate("QUANTSITE_API_THROTTLE_USER", "1200/minute"),
        "token_login": env_rate("QUANTSITE_API_THROTTLE_LOGIN", "10/minute"),
    },
    # Behind a reverse proxy the client address is the last X-Forwarded-For hop it added.
    "NUM_PROXIES": env_int("QUANTSITE_API_NUM_PROXIES", 0, minimum=0) or None,
    # JSON through orjson (NaN -> null); list endpoints add ?format=csv (portfolio/api/base.py)
    "DEFAULT_RENDERER_CLASSES": [
        "drf_orjson_renderer.renderers.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # numbers as numbers: Decimal money and weights (initial_capital, target_allocation)
    # are written as JSON numbers (the nearest double), not strings
    "COERCE_DECIMAL_TO_STRING": False,
}
# A token lives QUANTSITE_API_TOKEN_TTL_DAYS days (0: until revoked).
QUANTSITE_API_TOKEN_TTL_DAYS = env_int("QUANTSITE_API_TOKEN_TTL_DAYS", 90, minimum=0)
REST_KNOX = {
    "TOKEN_TTL": (
        timedelta(days=QUANTSITE_API_TOKEN_TTL_DAYS) if QUANTSITE_API_TOKEN_TTL_DAYS else None
    ),
    "TOKEN_PREFIX": "qs_",  # recognisable by secret scanners
    "AUTH_HEADER_PREFIX": "Token",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Quantsite API",
    "DESCRIPTION": (
        "Read the paper-trading book and run its controls. Authenticate with a token "
        "(`Authorization: Token <token>`, see `POST /api/tokens/`) or the dashboard's session "
        "(CSRF header on unsafe methods). Reads need any signed-in user; commands need a "
        'staff user. Errors: `{"detail": ...}`, or for 400 the offending field or '
        "parameter mapped to its messages."
    ),
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SCHEMA_PATH_PREFIX": r"/api/",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # One name for a choice set that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "RebalanceMethodEnum": "portfolio.models.Portfolio.RebalanceMethod",
        "AllocationMethodEnum": "portfolio.models.Portfolio.AllocationMethod",
        "StrategyStatusEnum": "portfolio.models.Strategy.Status",
        "PendingOrderStatusEnum": "portfolio.models.PendingOrder.Status",
        "RebalanceRequestStatusEnum": "portfolio.models.RebalanceRequest.Status",
        "UpdateRunStatusEnum": "portfolio.models.UpdateRun.Status",
        "ViolationStatusEnum": "risk.models.Violation.Status",
        "AlertDeliveryStatusEnum": "risk.models.AlertDelivery.Status",
        "RiskActionEnum": "risk.models.Action",
        "ScenarioRunStatusEnum": "risk.models.ScenarioRun.Status",
        "ScenarioRunTriggerEnum": "risk.models.ScenarioRun.Trigger",
        "ScenarioKindEnum": "risk.models.ScenarioRun.Kind",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# Throttle counters: Redis when there is one (shared by every web process), else this
# process's memory (the embedded single daphne).
CACHES["throttle"] = _redis_or(
    "quantsite-throttle",
    {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
)

EMAIL_BACKEND = env_str("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("DJANGO_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("DJANGO_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("DJANGO_EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("DJANGO_EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("DJANGO_EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("DJANGO_EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("DJANGO_EMAIL_USE_TLS and DJANGO_EMAIL_USE_SSL exclude each other")
EMAIL_TIMEOUT = env_int("DJANGO_EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DJANGO_DEFAULT_FROM_EMAIL", "quantsite@localhost")

# --- Quantsite ----------------------------------------------------------------------------
QUANTSITE_CONFIG_DIR = Path(env_str("QUANTSITE_CONFIG_DIR", str(BASE_DIR / "config")))
# Which price provider run_update pulls from: bundled (the shipped real data), csv, yfinance.
QUANTSITE_DATA_PROVIDER = env_choice(
    "QUANTSITE_DATA_PROVIDER", "bundled", ("bundled", "csv", "yfinance")
)
QUANTSITE_DATA_CSV = env_str("QUANTSITE_DATA_CSV")
# Input rules for price files (README "Input rules"): a larger file is refused before it
# is read; a price outside [MIN, MAX] or more than MAX_JUMP times (or under 1/MAX_JUMP of)
# the ticker's previous close is recorded as a data issue and held back.
QUANTSITE_PRICE_FILE_MAX_MB = env_int("QUANTSITE_PRICE_FILE_MAX_MB", 100, minimum=1)
QUANTSITE_PRICE_MIN = env_float("QUANTSITE_PRICE_MIN", 1e-6, minimum=0)
QUANTSITE_PRICE_MAX = env_float("QUANTSITE_PRICE_MAX", 1e9, minimum=0)
QUANTSITE_PRICE_MAX_JUMP = env_float("QUANTSITE_PRICE_MAX_JUMP", 10.0, minimum=1)
# Outages (README "Operations"): each request to a remote price provider (yfinance) gives
# up after this many seconds, so a feed that hangs fails the run instead of holding it;
# prices count as stale (a warning on the pages and in /readyz) when the newest stored bar
# is more than QUANTSITE_STALE_DATA_DAYS calendar days old. Not checked for the bundled
# provider, whose history ends in 2022 by design.
QUANTSITE_PRICE_TIMEOUT_SECONDS = env_int("QUANTSITE_PRICE_TIMEOUT_SECONDS", 20, minimum=1)
QUANTSITE_STALE_DATA_DAYS = env_int("QUANTSITE_STALE_DATA_DAYS", 5, minimum=1)
# Demo replay: with N > 0 the bundled provider releases at most N new bars per update,
# so the embedded demo's scheduled updates move the live pages one bar at a time.
QUANTSITE_REPLAY_BARS_PER_UPDATE = env_int("QUANTSITE_REPLAY_BARS_PER_UPDATE", 0, minimum=0)
QUANTSITE_UPDATE_EVERY_MINUTES = env_int("QUANTSITE_UPDATE_EVERY_MINUTES", 1, minimum=1)
# The dashboard pages keep what they compute from stored rows in the "pages" cache,
# stamped with the committed state (reporting.pages.common.state_cached); an update that
# applied bars builds them right after (reporting.pages.warm.pages_warm).
QUANTSITE_HISTORY_CACHE = env_bool("QUANTSITE_HISTORY_CACHE", True)
# Dates per transaction when replaying history (a date is never split across two).
QUANTSITE_DATES_PER_COMMIT = env_int("QUANTSITE_DATES_PER_COMMIT", 500, minimum=1)
# Liveness of update runs: a running update writes a heartbeat every
# QUANTSITE_RUN_HEARTBEAT_SECONDS (0: only between chunks); a run (or the update lock)
# whose heartbeat is older than QUANTSITE_RUN_STALE_SECONDS is taken for dead and marked
# failed by the reaper. The stale window must cover several heartbeats.
QUANTSITE_RUN_HEARTBEAT_SECONDS = env_int("QUANTSITE_RUN_HEARTBEAT_SECONDS", 20, minimum=0)
QUANTSITE_RUN_STALE_SECONDS = env_int("QUANTSITE_RUN_STALE_SECONDS", 180, minimum=10)
if QUANTSITE_RUN_HEARTBEAT_SECONDS * 3 > QUANTSITE_RUN_STALE_SECONDS:
    raise ImproperlyConfigured(
        "QUANTSITE_RUN_STALE_SECONDS must be at least 3 x QUANTSITE_RUN_HEARTBEAT_SECONDS"
    )
# /readyz: a worker heartbeat younger than this, and a finished update younger than
# QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS (default: three schedule intervals + 2 minutes).
QUANTSITE_READY_WORKER_SECONDS = env_int("QUANTSITE_READY_WORKER_SECONDS", 30, minimum=1)
QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS = env_int(
    "QUANTSITE_READY_UPDATE_MAX_AGE_SECONDS",
    3 * 60 * QUANTSITE_UPDATE_EVERY_MINUTES + 120,
    minimum=1,
)
# A violation found on a bar older than this (a catch-up replay) is recorded, not alerted.
QUANTSITE_ALERT_MAX_AGE_DAYS = env_int("QUANTSITE_ALERT_MAX_AGE_DAYS", 7, minimum=0)
# Scale out (README "Scaling out"): the per-strategy signals and sizing of a book with at
# least QUANTSITE_FANOUT_MIN_STRATEGIES strategies run on the qcluster workers: "off"
# (default), "auto" (Q_CLUSTER workers - 1 groups) or a number of groups. A group that
# fails or has not answered within QUANTSITE_FANOUT_TIMEOUT seconds fails the run.
QUANTSITE_FANOUT = env_str("QUANTSITE_FANOUT", "off").strip().lower()
if QUANTSITE_FANOUT not in ("off", "auto") and not (
    QUANTSITE_FANOUT.isdigit() and int(QUANTSITE_FANOUT) >= 1
):
    raise ImproperlyConfigured(
        f"QUANTSITE_FANOUT={QUANTSITE_FANOUT!r}: expected off, auto or a number of groups >= 1"
    )
QUANTSITE_FANOUT_MIN_STRATEGIES = env_int("QUANTSITE_FANOUT_MIN_STRATEGIES", 20, minimum=1)
QUANTSITE_FANOUT_TIMEOUT = env_int("QUANTSITE_FANOUT_TIMEOUT", 600, minimum=1)

# Downloads (/export/...): a table or workbook of more than QUANTSITE_EXPORT_DIRECT_ROWS
# data rows is written by the task queue (reporting.export_jobs) with progress and a
# download link, never inside the request: openpyxl writes some 20-80k cells a second, so
# 2,000 trades (22,000 cells) take at most about a second. Files are kept
# QUANTSITE_EXPORT_KEEP_HOURS, then deleted when the next job starts. A user has at most
# QUANTSITE_EXPORT_MAX_ACTIVE jobs queued or running at once (each holds a worker).
QUANTSITE_EXPORT_DIRECT_ROWS = env_int("QUANTSITE_EXPORT_DIRECT_ROWS", 2000, minimum=0)
QUANTSITE_EXPORT_KEEP_HOURS = env_int("QUANTSITE_EXPORT_KEEP_HOURS", 24, minimum=1)
QUANTSITE_EXPORT_MAX_ACTIVE = env_int("QUANTSITE_EXPORT_MAX_ACTIVE", 3, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", "INFO")},
}

# Scenarios (issue 13; risk.services.scenario_requests): what the scheduled set after each
# update computes. Stress modes "hold" and/or "run"; the Monte Carlo projection's paths,
# horizon (bars), mean block length (bars) and seed; the correlation regime check's
# window (bars, default: the risk manager's 60), its test level and the average
# correlation that alerts when no portfolio strategy_correlation limit is configured.
QUANTSITE_SCENARIO_MODES = env_list("QUANTSITE_SCENARIO_MODES", ["hold", "run"])
QUANTSITE_MC_PATHS = env_int("QUANTSITE_MC_PATHS", 10_000, minimum=1)
QUANTSITE_MC_HORIZON = env_int("QUANTSITE_MC_HORIZON", 252, minimum=1)
QUANTSITE_MC_BLOCK = env_int("QUANTSITE_MC_BLOCK", 21, minimum=1)
QUANTSITE_MC_SEED = env_int("QUANTSITE_MC_SEED", 7, minimum=0)
QUANTSITE_REGIME_WINDOW = env_int("QUANTSITE_REGIME_WINDOW", 60, minimum=3)
QUANTSITE_REGIME_ALPHA = env_float("QUANTSITE_REGIME_ALPHA", 0.001, minimum=0.0)
QUANTSITE_REGIME_THRESHOLD = env_float("QUANTSITE_REGIME_THRESHOLD", 0.7, minimum=-1.0)
QUANTSITE_SCENARIOS_AFTER_UPDATE = env_bool("QUANTSITE_SCENARIOS_AFTER_UPDATE", True)
if not set(QUANTSITE_SCENARIO_MODES) <= {"hold", "run"}:
    raise ImproperlyConfigured(
        f"QUANTSITE_SCENARIO_MODES={','.join(QUANTSITE_SCENARIO_MODES)!r}: expected hold, run "
        "or both, comma-separated"
    )
