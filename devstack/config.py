"""Runner settings: CLI flag beats Invoke config (env, ``invoke.yaml``), which beats defaults."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from invoke.config import DataProxy
from invoke.vendor import yaml

from devstack import registry
from devstack.errors import UsageError
from devstack.urls import mask_text, mask_url, unencoded_password

DEFAULT_BROKER_URL = "amqp://guest:guest@localhost:5672//"
BROKER_ENV = "CELERY_BROKER_URL"

#: The ``devstack`` key of the Invoke config; ``INVOKE_DEVSTACK_<KEY>`` overrides it.
DEFAULTS: dict[str, Any] = {
    "broker_url": "",
    # The namespace of this checkout's sync queues and worker names on the broker (None: derived
    # from the checkout's folder, see ``derive_project``; '': the base names, for a broker_url
    # with a virtual host of its own).
    "project": None,
    "venv": ".venv",
    # Durations are text here: Invoke would cast INVOKE_DEVSTACK_LOCK_TIMEOUT=abc with float()
    # and fail with a traceback; as text they reach the check below, which names the variable.
    "lock_timeout": "10",
    "stop_grace": "5",
    "allow_remote": False,
    "stop_servers": False,
    "backup_dir": "backups",
    "log_dir": "logs",
    "sync": "local",
    "databases": {name: "" for name in registry.NAMES},
    # Dev server ports of ``inv up`` (None: the registry's port); text or None so that Invoke
    # hands INVOKE_DEVSTACK_PORTS_AUTH=abc to the check below instead of failing in int().
    "ports": {name: None for name in registry.NAMES},
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
    ports: Mapping[str, int] | None = None
    project: str | None = None

    def namespace(self) -> str:
        """This checkout's namespace on the broker ('' for none): ``project``, else derived."""
        return derive_project(self.root) if self.project is None else self.project

    def queue(self, name: str) -> str:
        """The name sync queue ``name`` (a base name of the registry) has on the broker."""
        return queue_name(self.namespace(), name)

    def database_url(self, service: str) -> str:
        """Return the DATABASE_URL the runner gives ``service`` ('' means its SQLite file)."""
        return (self.databases or {}).get(service) or ""

    def port(self, service: registry.Service) -> int:
        """The port of ``service``'s dev server: ``devstack.ports.<name>``, else the registry's."""
        port = (self.ports or {}).get(service.name) or service.port
        if not port:
            raise UsageError(
                f"The {service.name} service has no dev server port; set devstack.ports.{service.name}."
            )
        return port

    def venv_dir(self, service: registry.Service) -> Path:
        return service.folder(self.root) / self.venv

    def state_dir(self) -> Path:
        return self.root / ".devstack"


#: A project name: letters, digits, '-' and '_' (a '.' separates it from the queue's base name).
PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def queue_name(namespace: str, name: str) -> str:
    """The name of sync queue ``name`` on the broker in ``namespace`` ('' for none)."""
    return f"{namespace}.{name}" if namespace else name


def derive_project(root: Path) -> str:
    """The default namespace of the checkout at ``root``: its folder's name and a hash of its path.

    Two clones in folders of the same name still differ; the same folder always gives the same
    name (case-folded on Windows, where paths are case-insensitive).
    """
    where = Path(os.path.abspath(root))
    name = re.sub(r"[^a-z0-9]+", "-", where.name.lower()).strip("-")[:24] or "devstack"
    digest = hashlib.sha256(os.path.normcase(str(where)).encode("utf-8")).hexdigest()[:6]
    return f"{name}-{digest}"


def resolve_broker_url(configured: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """Pick the broker URL: config first, then the services' variable, then the default."""
    return configured or environ.get(BROKER_ENV) or DEFAULT_BROKER_URL


#: Where a setting can come from, in Invoke's order of precedence (highest first).
SOURCES = (
    ("_runtime", "the -f config file"),
    ("_env", "INVOKE_DEVSTACK_{KEY}"),
    ("_project", "invoke.yaml (or .yml/.json) next to tasks.py"),
    ("_user", "~/.invoke.yaml"),
    ("_system", "/etc/invoke.yaml"),
)
BOOLS = ("allow_remote", "stop_servers")
TEXTS = ("broker_url", "venv", "backup_dir", "log_dir")
CHOICES = {"sync": ("local", "broker")}
#: Keys Invoke itself or the task file add to the section.
INTERNAL = ("root",)


def source_of(layers: Mapping[str, tuple[Any, str]], *path: str) -> str:
    """Name where a setting came from: the highest layer of Invoke's config that holds it.

    ``layers`` maps each attribute of ``SOURCES`` to the layer's data and a label (the file).
    """
    missing = object()
    for attribute, _ in SOURCES:
        data, label = layers.get(attribute, (None, ""))
        node: Any = data or {}
        for part in ("devstack", *path):
            node = node.get(part, missing) if isinstance(node, Mapping) else missing
        if node is not missing:
            return label.replace("{KEY}", "_".join(path).upper())
    return "the defaults"


def layers_of(config: Any) -> dict[str, tuple[Any, str]]:
    """Each layer of an Invoke config, labelled with the file it came from where there is one."""
    found = {}
    for attribute, label in SOURCES:
        path = getattr(config, f"{attribute}_path", None)
        found[attribute] = (getattr(config, attribute, None), str(path) if path else label)
    return found


def is_mapping(value: object) -> bool:
    """A mapping, or Invoke's view of one (``DataProxy`` is not a ``Mapping``)."""
    return isinstance(value, Mapping | DataProxy)


def validate(section: object, layers: Mapping[str, tuple[Any, str]] | None = None) -> list[str]:
    """Check every setting of the ``devstack`` section; one sentence per problem, naming its source."""

    def where(*path: str) -> str:
        return source_of(layers, *path) if layers is not None else "config"

    if not is_mapping(section):
        return [
            f"The devstack setting must be a mapping of settings, got {type(section).__name__} ({where()})."
        ]
    problems: list[str] = []
    for key in section:  # type: ignore[attr-defined]  # a Mapping or Invoke's DataProxy
        value = section[key]  # type: ignore[index]
        if key in INTERNAL:
            continue
        if key not in DEFAULTS:
            hint = difflib.get_close_matches(str(key), list(DEFAULTS), n=1)
            guess = f"; did you mean devstack.{hint[0]}" if hint else f"; known: {', '.join(DEFAULTS)}"
            problems.append(f"The setting devstack.{key} is unknown{guess} ({where(str(key))}).")
        elif key in TEXTS and (not isinstance(value, str) or (key == "venv" and not value.strip())):
            problems.append(f"The setting devstack.{key} must be text, got {shown(value)} ({where(key)}).")
        elif key == "broker_url" and unencoded_password(value):
            problems.append(unencoded(f"devstack.{key}", value, where(key)))
        elif key in BOOLS and not isinstance(value, bool) and str(value).strip().lower() not in BOOL_TEXT:
            problems.append(
                f"The setting devstack.{key} must be true or false, got {shown(value)} ({where(key)})."
            )
        elif (
            key == "project"
            and value is not None
            and not (isinstance(value, str) and (value == "" or PROJECT.fullmatch(value)))
        ):
            problems.append(
                f"The setting devstack.project must be letters, digits, '-' or '_' (at most 63, no '.'), "
                f"or '' for the base queue names, got {shown(value)} ({where(key)})."
            )
        elif key in ("lock_timeout", "stop_grace"):
            try:
                _seconds(key, value)
            except UsageError as exc:
                problems.append(f"{str(exc).rstrip('.')} ({where(key)}).")
        elif key in CHOICES and value not in ("", None, *CHOICES[key]):
            allowed = " or ".join(CHOICES[key])
            problems.append(
                f"The setting devstack.{key} must be {allowed}, got {shown(value)} ({where(key)})."
            )
        elif key == "databases":
            problems += _databases(value, where)
        elif key == "ports":
            problems += _ports(value, where)
        elif key == "seed" and not is_mapping(value):
            problems.append(
                f"The setting devstack.seed must be a mapping such as {{tickets: 100}}, got {shown(value)} "
                f"({where(key)})."
            )
    return problems


def _databases(value: object, where: Callable[..., str]) -> list[str]:
    if not is_mapping(value):
        return [
            f"The setting devstack.databases must map service names to database URLs, got {shown(value)} "
            f"({where('databases')})."
        ]
    problems = []
    for name in value:  # type: ignore[attr-defined]
        url = value[name]  # type: ignore[index]
        if name not in registry.NAMES:
            hint = difflib.get_close_matches(str(name), registry.NAMES, n=1)
            guess = f"; did you mean {hint[0]}" if hint else f"; use {', '.join(registry.NAMES)}"
            problems.append(
                f"devstack.databases names the unknown service {name}{guess} ({where('databases', name)})."
            )
        elif url is not None and not isinstance(url, str):
            problems.append(
                f"devstack.databases.{name} must be a database URL, got {shown(url)} "
                f"({where('databases', name)})."
            )
        elif url and unencoded_password(url):
            problems.append(unencoded(f"devstack.databases.{name}", url, where("databases", name)))
        elif url and in_memory(url):
            problems.append(
                f"devstack.databases.{name} is an in-memory SQLite database, which loses everything between "
                f"commands; give a file (sqlite:///path) or leave it empty ({where('databases', name)})."
            )
        elif url and urlsplit(url.strip()).scheme.lower() not in DATABASE_SCHEMES:
            problems.append(
                f"devstack.databases.{name} must be a sqlite:///path or postgres://… URL (the services have "
                f"drivers for SQLite and PostgreSQL), got '{mask_url(url.strip())}' "
                f"({where('databases', name)})."
            )
    return problems


def _ports(value: object, where: Callable[..., str]) -> list[str]:
    if not is_mapping(value):
        return [
            f"The setting devstack.ports must map service names to ports such as {{helpdesk: 8000}}, "
            f"got {shown(value)} ({where('ports')})."
        ]
    problems = []
    for name in value:  # type: ignore[attr-defined]
        port = value[name]  # type: ignore[index]
        if name not in registry.NAMES:
            hint = difflib.get_close_matches(str(name), registry.NAMES, n=1)
            guess = f"; did you mean {hint[0]}" if hint else f"; use {', '.join(registry.NAMES)}"
            problems.append(
                f"devstack.ports names the unknown service {name}{guess} ({where('ports', name)})."
            )
        elif port not in (None, "") and parse_port(port) is None:
            problems.append(
                f"devstack.ports.{name} must be a port number from 1 to 65535, got {shown(port)} "
                f"({where('ports', name)})."
            )
    return problems


def parse_port(value: object) -> int | None:
    """A TCP port from a config value (an int or its text), or None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        port = int(str(value).strip())
    except ValueError:
        return None
    return port if 1 <= port <= 65535 else None


#: The URL schemes the services' database settings (dj-database-url) and installed drivers accept.
DATABASE_SCHEMES = frozenset({"sqlite", "postgres", "postgresql", "pgsql", "postgis"})


def unencoded(setting: str, url: str, source: str) -> str:
    return (
        f"The password in {setting} ({mask_url(url)}) holds characters a URL must percent-encode: write "
        f"/ ? # % @ : as %2F %3F %23 %25 %40 %3A ({source})."
    )


def shown(value: object) -> str:
    """A setting's value as a message shows it: its repr, the password of any URL in it masked."""
    return mask_text(repr(value))


def in_memory(url: str) -> bool:
    """Tell whether a database URL is an in-memory SQLite database.

    ``sqlite://``, ``sqlite:///``, ``sqlite://:memory:``, ``sqlite:///:memory:`` (with or without a
    query), SQLite's URI form ``file::memory:`` and ``?mode=memory``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "sqlite":
        return False
    name = parts.netloc + unquote(parts.path).lstrip("/")
    modes = parse_qs(parts.query).get("mode", [])
    return name in ("", ":memory:") or name.startswith("file::memory:") or "memory" in modes


def from_config(
    config: Mapping[str, Any], root: Path, layers: Mapping[str, tuple[Any, str]] | None = None
) -> Settings:
    """Build ``Settings`` from the ``devstack`` section of an Invoke config, validated first."""
    problems = validate(config, layers)
    if problems:
        raise UsageError(" ".join(problems))
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
        ports={k: p for k, v in dict(merged["ports"] or {}).items() if (p := parse_port(v)) is not None},
        project=None if merged["project"] is None else str(merged["project"]),
    )


def _seconds(key: str, value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if (
        seconds != seconds
        or seconds in (float("inf"), float("-inf"))
        or seconds < 0
        or isinstance(value, bool)
    ):
        raise UsageError(
            f"The setting devstack.{key} must be a finite number of seconds, got {shown(value)}."
        )
    return seconds


BOOL_TEXT = {"1", "0", "true", "false", "yes", "no", "on", "off", ""}


def as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


#: Config files Invoke loads besides the runtime ``-f`` file: next to tasks.py, the user's, the system's.
FILE_NAMES = ("invoke.yaml", "invoke.yml", "invoke.json")


def config_files(root: Path) -> list[Path]:
    folders = [root, Path.home(), Path("/etc")]
    names = [*FILE_NAMES, *(f".{n}" for n in FILE_NAMES)]
    return [
        f / n for f in folders for n in names if (f / n).is_file() and (f != root or not n.startswith("."))
    ]


#: What a section that must be a mapping looks like.
SECTION_HINTS = {
    "databases": "give one URL per service.",
    "seed": "for example {tickets: 100}.",
    "ports": "for example {helpdesk: 8000}.",
}


def _shapes(section: Mapping[str, Any], defaults: Mapping[str, Any], name: str, path: Path) -> list[str]:
    """A mapping where a value belongs, or the reverse: Invoke cannot merge either with its defaults."""
    problems: list[str] = []
    for key, value in section.items():
        if key not in defaults or value is None:
            continue
        if isinstance(defaults[key], dict) and not isinstance(value, Mapping):
            hint = SECTION_HINTS.get(key, "fix or remove it.")
            problems.append(f"{name}.{key} in {path} must be a mapping, got {shown(value)}: {hint}")
        elif isinstance(defaults[key], dict):
            problems += _shapes(value, defaults[key], f"{name}.{key}", path)
        elif isinstance(value, Mapping):
            problems.append(
                f"{name}.{key} in {path} must be a single value, not a mapping; fix or remove it."
            )
    return problems


def precheck(root: Path, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Check what Invoke itself would fail on with a traceback, before it loads anything.

    Invoke parses the config files and casts ``INVOKE_*`` variables on its own: a file that is
    not text, not YAML/JSON or not a mapping, a setting whose kind clashes with the default (a
    list where a mapping belongs), or a variable naming a whole section, stops it with a traceback.
    """
    problems: list[str] = []
    for path in config_files(root):
        try:
            text = path.read_bytes().decode("utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)  # type: ignore[no-untyped-call]
        except UnicodeDecodeError:
            problems.append(f"{path} is not a text file; fix or remove it.")
            continue
        except (ValueError, yaml.YAMLError) as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            problems.append(f"{path} is not valid {path.suffix.lstrip('.').upper()}{line}; fix or remove it.")
            continue
        if data is None:
            continue
        if not isinstance(data, Mapping):
            problems.append(f"{path} must hold a mapping of settings, not {type(data).__name__}.")
            continue
        section = data.get("devstack")
        if section is None:
            continue
        if not isinstance(section, Mapping):
            problems.append(
                f"devstack in {path} must be a mapping of settings, not {type(section).__name__}."
            )
            continue
        problems += _shapes(section, DEFAULTS, "devstack", path)
    for key in ("DATABASES", "SEED", "PORTS"):
        if f"INVOKE_DEVSTACK_{key}" in environ:
            problems.append(
                f"INVOKE_DEVSTACK_{key} cannot set a whole section; set one entry, such as "
                f"INVOKE_DEVSTACK_{key}_{'TICKETS' if key == 'SEED' else 'HELPDESK'}."
            )
    return problems
