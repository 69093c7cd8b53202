"""fnplatform settings: configured by environment variables only.

With nothing set, the embedded default needs nothing installed: SQLite in the
data directory, an in-memory channel layer, a secret key generated once.
"""

import json
import os
import secrets
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from fnplatform import PROJECT_APPS
from fnplatform.datafiles import restrict_data_dir, restrict_sqlite

# 1. Paths and env helpers

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


DATA_DIR = Path(env_str("FNPLATFORM_DATA_DIR", str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Only the server's user may enter the data dir or read its keys (also files made before).
restrict_data_dir(DATA_DIR, ["secret_key", "secrets_key"])


def generated_secret(filename: str, make) -> str:
    """Return the secret stored in DATA_DIR/filename, creating it once (mode 0600)."""
    path = DATA_DIR / filename
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        restrict_data_dir(DATA_DIR, [filename])
        return value
    value = make()
    # O_EXCL: if two processes race, one writes and both read the winner.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# 2. Security

SECRET_KEY = env_str("SECRET_KEY") or generated_secret(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SESSION_COOKIE_HTTPONLY = True
# Bearer tokens from POST /api/v1/auths/signin live this many seconds (Open WebUI's
# JWT_EXPIRES_IN default, 4 weeks); sign-out revokes one sooner.
SIGNIN_TOKEN_SECONDS = env_int("FNPLATFORM_SIGNIN_TOKEN_SECONDS", 4 * 7 * 24 * 3600)
if SIGNIN_TOKEN_SECONDS <= 0:
    raise ImproperlyConfigured("FNPLATFORM_SIGNIN_TOKEN_SECONDS must be a positive number.")
X_FRAME_OPTIONS = "SAMEORIGIN"

# 3. Apps

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_ace",
    # Its Swagger and ReDoc assets, served from our static files: /api/docs works offline.
    "ninja",
    "channels",
    *PROJECT_APPS,
]

# 4. Middleware

# Django's own middleware through fnplatform.middleware's subclasses, which run their
# hooks on the event loop instead of a thread hop each.
MIDDLEWARE = [
    "fnplatform.middleware.SecurityMiddleware",
    "fnplatform.middleware.StaticFilesMiddleware",
    "fnplatform.middleware.SessionMiddleware",
    "fnplatform.middleware.CommonMiddleware",
    "fnplatform.middleware.RefuseLoneSurrogatesMiddleware",
    "fnplatform.middleware.CsrfViewMiddleware",
    "fnplatform.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "fnplatform.middleware.MessageMiddleware",
    "fnplatform.middleware.XFrameOptionsMiddleware",
    "fnplatform.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "fnplatform.urls"
ASGI_APPLICATION = "fnplatform.asgi.application"
WSGI_APPLICATION = None

# 5. Templates

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
                # {{ csp_nonce }}: the one script and style tags a page may run inline.
                "django.template.context_processors.csp",
            ],
        },
    },
]

# 6. Database

# Django's connections are not kept between requests (CONN_MAX_AGE 0), as Django advises
# under ASGI: daphne runs each request's sync code in a thread of its own, so a kept
# connection is never used again and stays open until that thread is collected (9
# PostgreSQL backends left open after 30 requests at 600 s, here). Warm requests use
# none of them: they answer from the caches, reading the generation over
# fnplatform.state's own long-lived connection. Set DATABASE_CONN_MAX_AGE for
# management commands or a WSGI server; the health check then replaces a dropped one.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and IMMEDIATE transactions keep concurrent requests from failing with
    # "database is locked" under daphne's thread pool.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not memory) test database, so a live server process can share it;
    # one per test run, so concurrent runs never share (or corrupt) one.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test_db_{os.getpid()}.sqlite3")}
    restrict_sqlite(DATABASES["default"]["NAME"])  # and on creation: FunctionsConfig.ready
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Where a request reads the database generation its caches are valid for
# (fnplatform.state): "loop", on the event loop over a connection of its own (no thread
# hop); "thread", through Django's connection (the tests inside a transaction need it).
FNPLATFORM_STATE_READER = "loop"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True

# 7. Channels

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

# 8. Static files

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve straight from the apps' static folders too, so a missed collectstatic
# never leaves the admin's code editor without its scripts.
WHITENOISE_USE_FINDERS = True

# 9. Logging

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django": {"level": env_str("DJANGO_LOG_LEVEL", "INFO")}},
}

# 10. Project settings

LOGIN_URL = "login"
# A signed-in user lands on the chat.
LOGIN_REDIRECT_URL = "chat:new"
LOGOUT_REDIRECT_URL = "login"

# The Content-Security-Policy of every page: the second wall behind the sanitiser
# (chat.markdown). Scripts only from our origin or with the page's nonce, no eval, no
# plugin origin; plugin icons are data: or https: images. The admin's code editor
# (django-ace) needs inline styles; nothing else does, but htmx's and Ace's own
# style changes go through the CSSOM, which style-src does not govern.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "https:"],
    "connect-src": [CSP.SELF],
    "font-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    # Plugin code the page frames, never runs itself: a dialog's "execute" script and
    # plugins' embeds, in sandboxed frames of our own origin (chat.sandbox_execute,
    # chat.sandbox), and embeds that are URLs.
    "frame-src": [CSP.SELF, "https:"],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Fernet key(s) that encrypt secret valves at rest; comma-separated, newest first,
# so keys can be rotated. Generated once into the data dir when unset.
FNPLATFORM_SECRETS_KEY = env_str("FNPLATFORM_SECRETS_KEY") or generated_secret(
    "secrets_key", _fernet_key
)
# Where loaded plugin sources live as real files (their __file__).
FUNCTIONS_SOURCE_DIR = DATA_DIR / "plugin_sources"
# Imports from URLs: a timeout in seconds and a size cap in bytes.
FUNCTIONS_IMPORT_TIMEOUT = env_int("FNPLATFORM_IMPORT_TIMEOUT", 15)
FUNCTIONS_IMPORT_MAX_BYTES = env_int("FNPLATFORM_IMPORT_MAX_BYTES", 2 * 1024 * 1024)
# Import from a URL refuses hosts that resolve to loopback, private, link-local,
# multicast, reserved or unspecified addresses (at every redirect) unless this is on.
FUNCTIONS_IMPORT_ALLOW_PRIVATE = env_bool("FNPLATFORM_IMPORT_ALLOW_PRIVATE", False)
# The Open WebUI version whose plugin contract we implement.
FUNCTIONS_OPEN_WEBUI_VERSION = "0.11.0"
FNPLATFORM_VERSION = "0.1.0"
# Where plugin code runs: sandboxed worker processes, always. (Unit tests set
# "inline", which runs the worker's code in the test process; no environment
# variable can choose it, so a server never runs plugin code itself.)
FUNCTIONS_EXECUTOR = "process"
# Worker processes per function (or trust group), started at its first call and
# stopped after this many seconds without calls; past FNPLATFORM_MAX_RESPONSE_BYTES a
# streamed answer is cut off.
FUNCTIONS_WORKERS_PER_FUNCTION = env_int("FNPLATFORM_WORKERS_PER_FUNCTION", 1)
FUNCTIONS_WORKER_IDLE_SECONDS = float(env_str("FNPLATFORM_WORKER_IDLE_SECONDS", "300"))
FUNCTIONS_MAX_RESPONSE_BYTES = env_int("FNPLATFORM_MAX_RESPONSE_BYTES", 32 * 1024 * 1024)
# Functions with live workers at once: past it, the longest idle one's are stopped.
FUNCTIONS_MAX_WORKER_POOLS = env_int("FNPLATFORM_MAX_WORKER_POOLS", 64)
# Events (and __event_call__ questions) one call may send; they share the response's
# byte budget too.
FUNCTIONS_MAX_EVENTS = env_int("FNPLATFORM_MAX_EVENTS", 10000)
# Seconds a hook may run in a worker, and a stream may take to its first chunk.
FUNCTIONS_CALL_TIMEOUT = float(env_str("FNPLATFORM_CALL_TIMEOUT", "300"))
FUNCTIONS_FIRST_CHUNK_TIMEOUT = float(env_str("FNPLATFORM_FIRST_CHUNK_TIMEOUT", "120"))
# Per worker: address space (MB), open files, processes (itself and its children),
# CPU seconds over its life, and the resident size (MB) past which it is recycled.
FUNCTIONS_WORKER_MEMORY_MB = env_int("FNPLATFORM_WORKER_MEMORY_MB", 2048)
FUNCTIONS_WORKER_OPEN_FILES = env_int("FNPLATFORM_WORKER_OPEN_FILES", 256)
FUNCTIONS_WORKER_PROCESSES = env_int("FNPLATFORM_WORKER_PROCESSES", 64)
FUNCTIONS_WORKER_CPU_SECONDS = env_int("FNPLATFORM_WORKER_CPU_SECONDS", 3600)
FUNCTIONS_WORKER_RECYCLE_MB = env_int("FNPLATFORM_WORKER_RECYCLE_MB", 512)
# Function requirements: environments live here, one per requirement set; pip gets
# this many seconds per install.
FUNCTIONS_ENVS_DIR = Path(env_str("FNPLATFORM_ENVS_DIR", str(DATA_DIR / "envs"))).resolve()
# The packages plugins may import undeclared (requirements-plugins.txt), in an
# environment of their own that workers run; built by `make run` and `make test`.
FUNCTIONS_PLUGIN_ENV = Path(
    env_str("FNPLATFORM_PLUGIN_ENV", str(Path(sys.prefix) / "plugin-env"))
).resolve()
# Modules Open WebUI ships that plugins import undeclared are installed for the
# function that needs them (functions/services/implicit.py). This JSON object adds
# entries to that table, module to requirement ({"torch": "torch==2.9.0"}); an empty
# requirement turns a module's entry off.
FUNCTIONS_IMPLICIT_REQUIREMENTS = json.loads(env_str("FNPLATFORM_IMPLICIT_REQUIREMENTS", "{}"))
FUNCTIONS_PIP_TIMEOUT = float(env_str("FNPLATFORM_PIP_TIMEOUT", "900"))
# Calls a worker serves before it is replaced by a fresh one.
FUNCTIONS_WORKER_MAX_CALLS = env_int("FNPLATFORM_WORKER_MAX_CALLS", 1000)
# Calls of one function running at once in workers; more wait their turn.
FUNCTIONS_MAX_CONCURRENCY = env_int("FNPLATFORM_MAX_CONCURRENCY", 8)
# A function whose calls crash or hang its worker this many times within this many
# seconds is quarantined until staff release it.
FUNCTIONS_QUARANTINE_CRASHES = env_int("FNPLATFORM_QUARANTINE_CRASHES", 3)
FUNCTIONS_QUARANTINE_WINDOW = float(env_str("FNPLATFORM_QUARANTINE_WINDOW", "600"))
# Saved code is first loaded in a throwaway process with this time limit, so code that
# hangs or crashes at import is refused without touching the server.
FUNCTIONS_CHECK_TIMEOUT = float(env_str("FNPLATFORM_CHECK_TIMEOUT", "20"))
# Manifold pipes() listings: a timeout each, and how long a listing is reused.
FUNCTIONS_MANIFOLD_TIMEOUT = float(env_str("FNPLATFORM_MANIFOLD_TIMEOUT", "5"))
FUNCTIONS_MANIFOLD_CACHE_SECONDS = float(env_str("FNPLATFORM_MANIFOLD_CACHE_SECONDS", "30"))
# Plugin processes run under bubblewrap (functions/workers/sandbox.py): "auto" uses the
# protections this host has and warns about the others, "required" refuses to run plugin
# code without all of them, "off" runs it unsandboxed (to debug). FNPLATFORM_BWRAP names
# the bubblewrap binary (default: bwrap on PATH); a root server drops plugin processes
# to this uid and gid, which must belong to nobody else on the host.
FUNCTIONS_SANDBOX = env_str("FNPLATFORM_SANDBOX", "auto").strip().lower()
FUNCTIONS_BWRAP = env_str("FNPLATFORM_BWRAP")
FUNCTIONS_SANDBOX_UID = env_int("FNPLATFORM_SANDBOX_UID", 64123)
# Server-owned chat runs (chat.services.live): a streaming answer is saved at most
# once per CHAT_RUN_SAVE_SECONDS, and its process renews its lease (every third of
# CHAT_RUN_LEASE_SECONDS); an answer whose lease ran out is marked interrupted.
CHAT_RUN_SAVE_SECONDS = float(env_str("FNPLATFORM_RUN_SAVE_SECONDS", "1"))
CHAT_RUN_LEASE_SECONDS = float(env_str("FNPLATFORM_RUN_LEASE_SECONDS", "30"))
# How long a plugin's dialog (__event_call__ input, confirmation, execute) waits for the
# user before the plugin gets Open WebUI's "timed out" answer; a function's frontmatter
# may name its own (`dialog_timeout: 60`). Open WebUI's own default waits forever.
FNPLATFORM_DIALOG_TIMEOUT_SECONDS = float(env_str("FNPLATFORM_DIALOG_TIMEOUT_SECONDS", "300"))
# How long the link of a plugin's embed (the sandboxed frame's /sandbox/embed/<token>/)
# stays valid: a page drawn since gets a new one.
CHAT_EMBED_TOKEN_SECONDS = env_int("FNPLATFORM_EMBED_TOKEN_SECONDS", 24 * 3600)
