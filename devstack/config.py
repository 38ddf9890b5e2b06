"""Runner settings: CLI flag beats Invoke config (env, ``invoke.yaml``), which beats defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack import registry
from devstack.errors import UsageError

DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672//"
BROKER_ENV = "CELERY_BROKER_URL"

#: The ``devstack`` key of the Invoke config; ``INVOKE_DEVSTACK_<KEY>`` overrides it.
DEFAULTS: dict[str, Any] = {
    "broker_url": "",
    "venv": ".venv",
    "lock_timeout": 10.0,
    "stop_grace": 5.0,
    "allow_remote": False,
    "stop_servers": False,
    "backup_dir": "backups",
    "log_dir": "logs",
    "sync": "local",
    "databases": {name: "" for name in registry.NAMES},
    "seed": {**{flag.key: None for flag in registry.SEED_FLAGS}, "seed": None},
}


@dataclass(frozen=True)
class Settings:
    """Everything the library needs to know about where and how to run."""

    root: Path
    broker_url: str = DEFAULT_BROKER_URL
    venv: str = ".venv"
    lock_timeout: float = 10.0
    stop_grace: float = 5.0
    allow_remote: bool = False
    backup_dir: str = "backups"
    log_dir: str = "logs"
    databases: Mapping[str, str] | None = None

    def database_url(self, service: str) -> str:
        """Return the DATABASE_URL the runner gives ``service`` ('' means its SQLite file)."""
        return (self.databases or {}).get(service) or ""

    def venv_dir(self, service: registry.Service) -> Path:
        return service.folder(self.root) / self.venv

    def state_dir(self) -> Path:
        return self.root / ".devstack"


def resolve_broker_url(configured: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Pick the broker URL: config first, then the services' variable, then the default."""
    return configured or environ.get(BROKER_ENV) or DEFAULT_BROKER_URL


def from_config(config: Mapping[str, Any], root: Path) -> Settings:
    """Build ``Settings`` from the ``devstack`` section of an Invoke config."""
    merged = {**DEFAULTS, **dict(config)}
    return Settings(
        root=root,
        broker_url=resolve_broker_url(str(merged["broker_url"] or "")),
        venv=str(merged["venv"]),
        lock_timeout=_seconds("lock_timeout", merged["lock_timeout"]),
        stop_grace=_seconds("stop_grace", merged["stop_grace"]),
        allow_remote=as_bool(merged["allow_remote"]),
        backup_dir=str(merged["backup_dir"]),
        log_dir=str(merged["log_dir"]),
        databases={k: str(v or "") for k, v in dict(merged["databases"]).items()},
    )


def _seconds(key: str, value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise UsageError(f"The setting devstack.{key} must be a number of seconds, got '{value}'.")
    return seconds


def as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)
