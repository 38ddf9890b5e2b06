"""Configure the helpdesk service from the environment."""

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable (1/true/yes/on are true)."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "dev-insecure-helpdesk-key")
DEBUG = env_bool("DJANGO_DEBUG", True)
DJANGO_ENV = os.environ.get("DJANGO_ENV", "development")
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "helpdesk",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

WSGI_APPLICATION = "config.wsgi.application"

SQLITE_OPTIONS: dict[str, Any] = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def database_config() -> dict[str, Any]:
    """Return the default database from DATABASE_URL, or the service's SQLite file."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url))
    else:
        config = {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
    if config.get("ENGINE") == "django.db.backends.sqlite3":
        config["OPTIONS"] = {**config.get("OPTIONS", {}), **SQLITE_OPTIONS}
        name = Path(config["NAME"])
        if name.is_file() and not os.access(name.parent, os.W_OK):
            # A read-only checkout: SQLite cannot open a WAL database without creating its -shm
            # file, so it is read as it is (immutable: no lock, no journal, nothing written).
            config["NAME"] = f"{name.resolve().as_uri()}?mode=ro&immutable=1"
            config["OPTIONS"] = {"timeout": SQLITE_OPTIONS["timeout"]}
    return config


DATABASES = {"default": database_config()}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Celery: nothing here connects to the broker.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@localhost:5672//")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# The sync tasks apply their messages in batches of up to SYNC_BATCH_SIZE (see batching.py); the
# solo worker prefetches two batches, so the broker sends the next while one is applied.
SYNC_BATCH_SIZE = max(1, int(os.environ.get("SYNC_BATCH_SIZE", "200")))
CELERY_WORKER_PREFETCH_MULTIPLIER = 2 * SYNC_BATCH_SIZE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
# No result backend: outcomes are recorded in ProcessedEvent, not stored by Celery.
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_SEND_TASK_EVENTS = False
# Reuse the worker's database connection for this many tasks instead of
# reconnecting around every task (Celery's Django fixup reads this name).
CELERY_DB_REUSE_MAX = 1000

SYNC_QUEUES = ("hdts.user.sync", "hdts.employee.sync")

# The runner gives each checkout a namespace (SYNC_NAMESPACE): on the broker every sync queue,
# its exchange and its dead-letter queue are '<namespace>.<name>', so checkouts that share one
# RabbitMQ never consume each other's events. Unset or empty: the base names. Task names (and
# the outbox's queue column) keep the base names.
SYNC_NAMESPACE = os.environ.get("SYNC_NAMESPACE", "").strip()


def on_broker(name: str) -> str:
    """Return the name sync queue ``name`` has on the broker in this checkout's namespace."""
    return f"{SYNC_NAMESPACE}.{name}" if SYNC_NAMESPACE else name


SYNC_QUEUES_ON_BROKER = tuple(on_broker(name) for name in SYNC_QUEUES)

# The sync queues: a direct exchange and routing key named after each queue (the shape of the
# queues Celery creates on demand) and dead-lettering. A message the worker rejects (retries used
# up, malformed event) goes to the durable queue '<name>.dead' through the default exchange, where
# the runner's broker sync re-delivers it later. auth's relay and the runner declare the queues
# with exactly these arguments: RabbitMQ refuses a declaration with others (PRECONDITION_FAILED).
# The queues themselves (kombu objects) are built in config/celery_app.py from
# SYNC_QUEUES_ON_BROKER: kombu is imported only where Celery is, not by every manage.py.
DEAD_LETTER_SUFFIX = ".dead"
CELERY_TASK_ROUTES = {name: {"queue": on_broker(name)} for name in SYNC_QUEUES}
