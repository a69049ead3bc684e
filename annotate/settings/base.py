"""Settings shared by every environment. Environment-specific modules relax or tighten these."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from annotate.settings.env import env_float, env_int, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Everything the running app writes (SQLite file, embedded broker, converted models) goes here,
# so a checkout stays clean and `rm -rf var/` is a full reset.
VAR_DIR = Path(env_str("ATTUNE_VAR_DIR", str(BASE_DIR / "var")))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "personalization",
    "judgments",
    "annotate",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view opts out with @login_not_required (only the
    # login page and the API, which answers 401/403 itself so token clients are not redirected).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "annotate.urls"
WSGI_APPLICATION = "annotate.wsgi.application"

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


def database_config(url: str | None) -> dict[str, Any]:
    """SQLite under var/ unless DATABASE_URL names another database (PostgreSQL in CI and production)."""
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60))
    else:
        config = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "attune.sqlite3"),
            # The web process and the worker share one file: wait for the other's write lock
            # instead of failing with "database is locked".
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"},
        }
    return config


DATABASES = {"default": database_config(os.environ.get("DATABASE_URL") or None)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from static/ and app folders in development and tests (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# Uploads (admin import) are streamed from disk above this size rather than held in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attune API",
    "DESCRIPTION": "Human and model judgments of LLM personalization.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from the installed package, not a CDN: the app must work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Content Security Policy: no inline scripts or styles anywhere; data for scripts goes through
# json_script blocks, which are not executed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

# ---- Celery -------------------------------------------------------------------------------
# Redis when REDIS_URL is set. Otherwise kombu's filesystem transport: a real broker in a
# folder, consumed by a real worker process, so `make run` needs no server on a laptop.
REDIS_URL = os.environ.get("REDIS_URL") or ""
CELERY_BROKER_DIR = VAR_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        # Exchange tables; kombu's default is ./control relative to the working directory.
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
# Progress and outcomes live in the database (ModelRun rows), not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "personalization.tasks.*": {"queue": "generation"},
    "judgments.tasks.*": {"queue": "generation"},
}
CELERY_TASK_TIME_LIMIT = env_int("ATTUNE_TASK_TIME_LIMIT", 3600, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = max(5, CELERY_TASK_TIME_LIMIT - 30)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# ---- Models -------------------------------------------------------------------------------
# Where local model folders live (converted defaults, user-provided checkpoints).
ATTUNE_MODELS_DIR = Path(env_str("ATTUNE_MODELS_DIR", str(VAR_DIR / "models")))
# Registry names used when a study does not choose its own.
ATTUNE_DEFAULT_GENERATOR = env_str("ATTUNE_DEFAULT_GENERATOR", "smollm2-135m")
ATTUNE_DEFAULT_EMBEDDER = env_str("ATTUNE_DEFAULT_EMBEDDER", "minilm-l6")
ATTUNE_MERGE_THRESHOLD = env_float("ATTUNE_MERGE_THRESHOLD", 0.7)
# Base URLs of OpenAI-compatible servers, by name. Set by an administrator here and never taken
# from a request, so a user cannot point the app at an arbitrary host.
# ATTUNE_OPENAI_SERVERS="gpu1=http://10.0.0.5:8000/v1,local=http://127.0.0.1:8080/v1"
ATTUNE_OPENAI_SERVERS: dict[str, str] = {
    name.strip(): url.strip()
    for name, _, url in (
        item.partition("=") for item in os.environ.get("ATTUNE_OPENAI_SERVERS", "").split(",") if item.strip()
    )
}
ATTUNE_OPENAI_API_KEY = os.environ.get("ATTUNE_OPENAI_API_KEY", "")

# A cache shared by every web process (progress counts, stage settings, sessions): Redis
# when REDIS_URL is set, otherwise files under var/, which all processes on one machine share.
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # Sessions live here too: the default 300 entries would evict them (and the stage
            # configs) once a few hundred people have logged in.
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    }

# Sessions are read from that cache and written through to the database: one query fewer on
# every request, and nobody is logged out when the cache is flushed.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# Study-wide progress counts shown on every screen are cached this long (shared cache); 0 disables.
ATTUNE_PROGRESS_CACHE_SECONDS = env_int("ATTUNE_PROGRESS_CACHE_SECONDS", 5, minimum=0)
# "Next item" sweeps lapsed leases of its study stage at most this often (0 = on every request);
# it also sweeps whenever it finds nothing free, so no annotator is told "no work" because of one.
ATTUNE_LAZY_RECLAIM_SECONDS = env_int("ATTUNE_LAZY_RECLAIM_SECONDS", 5, minimum=0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("ATTUNE_LOG_LEVEL", "INFO")},
}
