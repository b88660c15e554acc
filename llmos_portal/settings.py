"""Settings for LLM OS Portal, read from the environment (see .env.example).

Defaults make `make run` work on one machine: SQLite, an in-process cache and channel layer, the
embedded models. DEBUG is off unless set: `make run` sets DEBUG=true (and says so), and with DEBUG
on and no SECRET_KEY a random key is generated once per checkout into var/dev-secret-key
(gitignored). With DEBUG off a SECRET_KEY is required; there is no built-in secret. Production
sets SECRET_KEY, ALLOWED_HOSTS and, to scale out, DATABASE_URL and REDIS_URL.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from llmos_portal.env import development_secret_key, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Environment variable SECRET_KEY is required when DEBUG is off. For development, "
            "`make run` sets DEBUG=true (then a per-checkout key is generated in var/dev-secret-key)."
        )
    SECRET_KEY = development_secret_key(BASE_DIR / "var" / "dev-secret-key")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "llmos_portal",
    "accounts",
    "inference",
    "usage",
    "playground",
    "batches",
    "audit",
    "knowledge",
]

MIDDLEWARE = [
    "llmos_portal.middleware.RequestIdMiddleware",
    "audit.context.AuditRequestMiddleware",  # audit records read the request being served
    "llmos_portal.faults.DatabaseUnavailableMiddleware",
    "llmos_portal.middleware.ContentSecurityPolicyMiddleware",
    "accounts.middleware.IpRulesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "llmos_portal.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "llmos_portal.middleware.LocaleMiddleware",  # pages in the visitor's language; the APIs stay English
    "llmos_portal.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.StaffTwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Pages load only this origin's scripts, styles, images and sockets; "off" turns the header off.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
if CONTENT_SECURITY_POLICY == "off":
    CONTENT_SECURITY_POLICY = ""
CSP_EXEMPT_PATHS = ("/api/docs/", "/api/redoc/")  # Swagger UI and Redoc are built on inline scripts

ROOT_URLCONF = "llmos_portal.urls"
ASGI_APPLICATION = "llmos_portal.asgi.application"
WSGI_APPLICATION = "llmos_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.template.context_processors.i18n",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite file by default, PostgreSQL (psycopg 3) through DATABASE_URL ---
DATABASE_URL = env_str("DATABASE_URL", "")
if not DATABASE_URL:
    (BASE_DIR / "var").mkdir(exist_ok=True)
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once; a busy timeout rides out short write locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
    # sqlite-vec (knowledge bases) is a loadable extension; Python builds without extension loading
    # get a sqlite3 module that has it (pysqlite3), before Django's backend imports sqlite3.
    from knowledge.sqlite_driver import use_sqlite_with_extensions

    use_sqlite_with_extensions()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Cache and channel layer: per-process by default, Redis when REDIS_URL is set ---
REDIS_URL = env_str("REDIS_URL", "")
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "llmos")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # If Redis goes away the cache degrades to misses (keys are then read from the database).
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
        }
    }
    # The login/signup throttles' counters: the same Redis, but errors raise, so accounts.throttle
    # can fall back to per-process counters instead of switching off.
    CACHES["ratelimit"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "llmos"}}
    CACHES["ratelimit"] = CACHES["default"]
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth ---
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console"
LOGOUT_REDIRECT_URL = "login"
ACCOUNT_EMAIL_VERIFICATION = env_bool("ACCOUNT_EMAIL_VERIFICATION", False)
# Staff must set up two-factor authentication (TOTP) before using the admin or the console.
REQUIRE_STAFF_2FA = env_bool("REQUIRE_STAFF_2FA", False)
ACCOUNT_VERIFICATION_MAX_AGE = timedelta(days=3)
# django-ratelimit rates for the account pages ("count/period"): per IP and per account.
LOGIN_RATE_PER_IP = env_str("LOGIN_RATE_PER_IP", "20/m")
LOGIN_RATE_PER_ACCOUNT = env_str("LOGIN_RATE_PER_ACCOUNT", "5/m")
SIGNUP_RATE_PER_IP = env_str("SIGNUP_RATE_PER_IP", "10/h")
PASSWORD_RESET_RATE_PER_IP = env_str("PASSWORD_RESET_RATE_PER_IP", "10/h")
RATELIMIT_VIEW = "accounts.views.ratelimited"
# The client address for limits and key IP allow-lists: the peer's, unless the peer is one of these
# proxies (addresses or CIDRs, e.g. nginx's); then the nearest untrusted hop of X-Forwarded-For.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
try:
    for _proxy in TRUSTED_PROXIES:
        ipaddress.ip_network(_proxy, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from exc
RATELIMIT_IP_META_KEY = "accounts.authentication.client_ip"
RATELIMIT_USE_CACHE = "ratelimit"

# --- API keys ---
API_KEY_PREFIX = "llmos"
MAX_ACTIVE_KEYS_PER_USER = env_int("MAX_ACTIVE_KEYS_PER_USER", 10, minimum=1)
API_KEY_CACHE_SECONDS = env_int("API_KEY_CACHE_SECONDS", 60, minimum=0)
API_KEY_LAST_USED_INTERVAL_SECONDS = env_int("API_KEY_LAST_USED_INTERVAL_SECONDS", 60, minimum=1)

# --- Email: console by default, SMTP when EMAIL_HOST is set ---
EMAIL_HOST = env_str("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "LLM OS Portal <noreply@localhost>")

# --- REST framework, JWT, OpenAPI ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.jwt.RevocableJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON bodies only (the strict fields reject form-encoded strings), parsed without 500s.
    "DEFAULT_PARSER_CLASSES": ["llmos_portal.jsonbody.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "EXCEPTION_HANDLER": "llmos_portal.faults.drf_exception_handler",  # 503 when the database is down
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 15, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A refresh gives a new refresh token and blacklists the old one; logout-everywhere, a
    # password change and deactivation blacklist all of a user's refresh tokens.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "TOKEN_OBTAIN_SERIALIZER": "accounts.jwt.EpochTokenObtainPairSerializer",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "LLM OS Portal API",
    "DESCRIPTION": "Portal API (JWT) and the OpenAI-compatible inference API (API keys).",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is public: a request carrying an API key (not a JWT) must not get a 401 from it.
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "COMPONENT_SPLIT_PATCH": False,  # PATCH bodies are validated whole (a rename needs its name)
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "llmos_portal.openapi.postprocess",  # adds /v1 (inference/openapi.py) and the errors sent
    ],
}

# --- Static files ---
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "llmos_portal.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security (production values follow from DEBUG=false; each can be overridden) ---
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 1_000_000, minimum=1024)

# --- Models and inference ---
MODELS_CACHE_DIR = Path(env_str("MODELS_CACHE_DIR", str(BASE_DIR / ".cache" / "models")))
INFERENCE_PRELOAD = env_bool("INFERENCE_PRELOAD", True)
INFERENCE_MAX_QUEUE = env_int("INFERENCE_MAX_QUEUE", 64, minimum=1)
INFERENCE_MAX_BATCH_SIZE = env_int("INFERENCE_MAX_BATCH_SIZE", 16, minimum=1)
# CPU threads for the model. Default: every core. Measured over HTTP on 2 cores (bench/RESULTS.md),
# 2 threads beat 1 at every concurrency; use fewer when other services share the machine.
INFERENCE_TORCH_THREADS = env_int("INFERENCE_TORCH_THREADS", os.cpu_count() or 1, minimum=1)
INFERENCE_DEVICE = env_str("INFERENCE_DEVICE", "cpu")
DEFAULT_CHAT_MODEL = env_str("DEFAULT_CHAT_MODEL", "SmolLM2-135M-Instruct")
DEFAULT_EMBEDDING_MODEL = env_str("DEFAULT_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
PLAYGROUND_MAX_CONCURRENT_PER_USER = env_int("PLAYGROUND_MAX_CONCURRENT_PER_USER", 2, minimum=1)  # per process
PLAYGROUND_MAX_MESSAGE_BYTES = env_int("PLAYGROUND_MAX_MESSAGE_BYTES", 65_536, minimum=1024)
RESPONSE_CACHE_SECONDS = env_int("RESPONSE_CACHE_SECONDS", 3600, minimum=0)  # 0 turns the cache off
# How long a failed deployment of a model group is skipped (shared through Redis when set).
DEPLOYMENT_COOLDOWN_SECONDS = env_int("DEPLOYMENT_COOLDOWN_SECONDS", 30, minimum=0)
# SSE comment (`: keep-alive`) sent while a stream waits this long for a token; 0 turns it off.
SSE_KEEPALIVE_SECONDS = env_int("SSE_KEEPALIVE_SECONDS", 10, minimum=0)
METRICS_TOKEN = env_str("METRICS_TOKEN", "")  # lets a Prometheus scraper read /metrics without a session
USAGE_BACKGROUND_WRITES = True

# --- Batch jobs (OpenAI Files + Batch API) ---
# A Celery broker (amqp://... RabbitMQ, or redis://...): jobs run on `make worker`. Unset: a
# background thread of the server runs them.
BROKER_URL = env_str("BROKER_URL", "")
BATCH_RUNNER = env_str("BATCH_RUNNER", "celery" if BROKER_URL else "thread")
if BATCH_RUNNER not in {"celery", "thread", "off"}:
    raise ImproperlyConfigured(f"BATCH_RUNNER={BATCH_RUNNER!r}: use celery, thread or off.")
if BATCH_RUNNER == "celery" and not BROKER_URL:
    raise ImproperlyConfigured("BATCH_RUNNER=celery needs BROKER_URL.")
BATCH_QUEUE = env_str("BATCH_QUEUE", "llmos-batches")
BATCH_VISIBILITY_TIMEOUT = env_int("BATCH_VISIBILITY_TIMEOUT", 600, minimum=10)  # Redis broker: redelivery after
BATCH_FILE_MAX_BYTES = env_int("BATCH_FILE_MAX_BYTES", 100_000_000, minimum=1024)
BATCH_MAX_LINES = env_int(
    "BATCH_MAX_LINES", 50_000, minimum=1
)  # usage rows are written by a background thread (tests flush by hand)

# --- Knowledge bases (documents -> chunks -> vectors; /v1/vector_stores, /api/v1/ask) ---
# auto: sqlite-vec on SQLite, pgvector (HNSW) on PostgreSQL with the `vector` extension, else an
# exact numpy search over the stored vectors (one matrix per base, cached per worker).
KNOWLEDGE_VECTOR_INDEX = env_str("KNOWLEDGE_VECTOR_INDEX", "auto")
if KNOWLEDGE_VECTOR_INDEX not in {"auto", "sqlite-vec", "pgvector", "numpy"}:
    raise ImproperlyConfigured(
        f"KNOWLEDGE_VECTOR_INDEX={KNOWLEDGE_VECTOR_INDEX!r}: use auto, sqlite-vec, pgvector or numpy."
    )
KNOWLEDGE_FILE_MAX_BYTES = env_int("KNOWLEDGE_FILE_MAX_BYTES", 20_000_000, minimum=1024)
KNOWLEDGE_CHUNK_CHARS = env_int("KNOWLEDGE_CHUNK_CHARS", 800, minimum=100)
KNOWLEDGE_CHUNK_OVERLAP = env_int("KNOWLEDGE_CHUNK_OVERLAP", 160, minimum=0)
KNOWLEDGE_MIN_SCORE = float(env_str("KNOWLEDGE_MIN_SCORE", "0.25"))  # below: "not in the knowledge base"


# Pages in English or Simplified Chinese: the language switcher's choice (a cookie), else the
# browser's Accept-Language. The APIs (/v1, /api, ...) always answer in English (LocaleMiddleware).
# Catalogues: locale/<lang>/LC_MESSAGES/*.po, compiled to .mo by `make compilemessages`.
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs each request's URL at INFO: an upstream URL can hold credentials (user:token@host).
    "loggers": {"django.request": {"level": "ERROR"}, "httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}
