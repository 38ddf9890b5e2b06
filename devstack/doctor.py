"""``inv doctor``: check the machine and the checkout up front, one line per check, each with its fix.

Each check is a small function that returns :class:`Check` rows; :func:`run_checks` runs them
(several at once: most wait for a socket or a process) and keeps their order. Doctor is a
reader: it writes no file (no lock, no virtualenv, no database, no log or report, not even
a stale PID file's removal) and needs no run lock, so it also runs next to a working run.
It connects to RabbitMQ and to each configured PostgreSQL database, and says where (password
masked); it binds each dev server port for a moment to see whether it is free.

The configuration is checked without stopping at its first problem: every bad key or value
is a row naming where it was set, and the other checks run with what remains (the defaults
in place of the bad values). When Invoke could not even load the config files (see
``config.precheck``), ``tasks.py`` calls :func:`unreadable`, which reports those problems and
the checks that need no configuration.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import psutil

from devstack import config, options, pgprobe, rabbit, registry, servers, venvs, workers
from devstack.config import Settings
from devstack.console import Console
from devstack.errors import StackError, UsageError
from devstack.holders import (
    Holder,
    find_holders,
    is_runserver,
    normcase,
    own_family,
    short_command,
    sqlite_path,
)
from devstack.urls import POSTGRES_SCHEMES, is_local, mask_text, mask_url

#: The oldest Python the runner and the services run on.
MIN_PYTHON = (3, 11)
#: Free space on the checkout's disk: below WARN a rebuild or a large seed may not fit, below
#: FAIL not even the three virtualenvs (about 90 MB each) can be rebuilt.
DISK_WARN = 1 << 30  # 1 GiB
DISK_FAIL = 300 << 20  # 300 MiB
#: Seconds to wait for RabbitMQ and for each PostgreSQL connection.
TIMEOUT = 3
#: Exit code when a check failed (warnings alone exit 0).
FAILED = 1
#: The checks that need the configuration, in their order (skipped when it cannot be read).
NEEDS_CONFIG = ("rabbitmq", "database", "port", "venv", "processes")


@dataclass(frozen=True)
class Check:
    """One finding: ``ok`` is True (passed), False (failed) or None (a warning, or not checked)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return "OK" if self.ok else "WARN" if self.ok is None else "FAIL"

    def text(self) -> str:
        """What was found, and for a failure or a warning what to do."""
        return f"{self.detail}: {self.fix}" if self.fix and self.ok is not True else self.detail

    def line(self) -> str:
        return f"{self.status:<4} {self.name:<11} {self.text()}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.lower(),
            "ok": self.ok,
            "detail": self.detail,
            "fix": self.fix,
        }


def split_sentence(sentence: str, fallback: str = "") -> tuple[str, str]:
    """Split one of the runner's error sentences ("what is wrong; what to do.") into its two halves."""
    text = sentence.strip().rstrip(".")
    detail, sep, fix = text.partition("; ")
    return (detail, fix) if sep else (text, fallback)


def shown(path: Path | str, root: Path) -> str:
    """A path as the user knows it: relative to the checkout when it is inside it."""
    try:  # abspath, not resolve: a virtualenv linked from elsewhere is still the checkout's
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return str(path)


def short_text(text: str, root: Path) -> str:
    """``text`` with the checkout's own folder left out of the paths it names."""
    for folder in dict.fromkeys((os.path.abspath(root), str(root.resolve()))):
        text = text.replace(folder + os.sep, "")
    return text


# -- Python and uv ---------------------------------------------------------------------------


def bundled_pip() -> str | None:
    """The pip that ``python -m venv`` would install (ensurepip's), or None without venv/ensurepip.

    Debian and Ubuntu ship Python without ``ensurepip`` until ``python3-venv`` is installed.
    """
    if importlib.util.find_spec("venv") is None or importlib.util.find_spec("ensurepip") is None:
        return None
    try:
        import ensurepip

        return str(ensurepip.version())
    except Exception:  # no bundled wheel: the module is there, the package data is not
        return None


def check_python(version: Sequence[int], pip: str | None, uv: str | None) -> Check:
    """Python 3.11 or newer, with ``venv`` and ``ensurepip`` (needed where uv is not found)."""
    number = ".".join(map(str, version[:3]))
    if tuple(version[:2]) < MIN_PYTHON:
        wanted = ".".join(map(str, MIN_PYTHON))
        return Check(
            "python",
            False,
            f"Python {number} is too old; the runner and the services need {wanted} or newer",
            f"install Python {wanted}+ and recreate .venv with it (python{wanted} -m venv .venv)",
        )
    if pip is None:
        fix = "sudo apt install python3-venv (Debian/Ubuntu), or use a Python that has it"
        if uv is None:
            return Check(
                "python",
                False,
                f"{number} has no venv/ensurepip, so 'inv install' cannot build virtualenvs",
                fix,
            )
        return Check(
            "python",
            None,
            f"{number} has no venv/ensurepip; 'inv install' uses uv, but python -m venv fails",
            fix,
        )
    return Check("python", True, f"{number} with venv and ensurepip (pip {pip})")


def uv_version(uv: str) -> str:
    """``uv --version``'s version number, or '' when it does not run."""
    try:
        done = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    words = done.stdout.split()
    return words[1] if done.returncode == 0 and len(words) > 1 else ""


def check_uv(uv: str | None, version: str = "") -> Check:
    """uv is found, or pip is the fallback (a warning, not a failure)."""
    if uv is None:
        return Check(
            "uv",
            None,
            "not found; 'inv install' falls back to pip, which works but is slower",
            "pip install uv, for faster installs",
        )
    if not version:
        return Check("uv", None, f"{uv} does not run; 'inv install' would fail with it", "pip install -U uv")
    return Check("uv", True, f"{version}; 'inv install' uses it")


# -- configuration ---------------------------------------------------------------------------

ENV_PREFIX = "INVOKE_DEVSTACK_"
NESTED = ("databases", "ports", "seed")


def env_names() -> dict[str, tuple[str, ...]]:
    """Every ``INVOKE_DEVSTACK_*`` variable Invoke reads, with the setting it sets."""
    names: dict[str, tuple[str, ...]] = {}
    for key, default in {**config.DEFAULTS, "root": None}.items():
        if isinstance(default, dict):
            for sub in default:
                names[f"{ENV_PREFIX}{key}_{sub}".upper()] = (key, sub)
        else:
            names[f"{ENV_PREFIX}{key}".upper()] = (key,)
    return names


def fix_at(source: str, verb: str = "fix") -> str:
    """What to do about a bad setting, given where it came from (a file or a variable)."""
    if source.startswith(ENV_PREFIX):
        return f"{verb} or unset {source}"
    return f"{verb} it in {source}"


def _seed_problems(
    value: object, where: Callable[[str], str]
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Problems of the ``devstack.seed`` section (sentence, fix), and its valid entries."""
    problems: list[tuple[str, str]] = []
    kept: dict[str, Any] = {}
    known = [*(f.key for f in registry.SEED_FLAGS), "seed"]
    for name in value:  # type: ignore[attr-defined]
        entry = value[name]  # type: ignore[index]
        source = where(str(name))
        if name not in known:
            hint = difflib.get_close_matches(str(name), known, n=1)
            guess = f"; did you mean devstack.seed.{hint[0]}" if hint else f"; known: {', '.join(known)}"
            problems.append(
                (f"The setting devstack.seed.{name} is unknown{guess} ({source})", fix_at(source, "rename"))
            )
            continue
        try:
            options.from_config({name: entry})
        except UsageError as exc:
            sentence = str(exc).rstrip(".").replace(f"--{name.replace('_', '-')}", f"devstack.seed.{name}")
            problems.append((f"The setting {sentence} ({source})", fix_at(source)))
            continue
        kept[name] = entry
    return problems, kept


def check_config(
    section: object,
    layers: Mapping[str, tuple[Any, str]],
    root: Path,
    environ: Mapping[str, str] = os.environ,
) -> tuple[list[Check], Settings]:
    """Check every setting and say where each one that is not a default comes from.

    Return the rows and the settings the other checks use: the valid settings, with the
    defaults in place of bad ones.
    """
    rows: list[Check] = []
    kept: dict[str, Any] = {}

    def source(*path: str) -> str:
        return short_text(config.source_of(layers, *path), root)

    def fail(sentence: str, fix: str) -> None:
        rows.append(Check("config", False, short_text(sentence.rstrip("."), root), fix))

    if not config.is_mapping(section):
        for problem in config.validate(section, layers):
            fail(problem, fix_at(source()))
        section = {}
    for key in section:  # type: ignore[attr-defined]
        value = section[key]  # type: ignore[index]
        if key in config.INTERNAL:
            kept[key] = value
            continue
        if key == "seed" and config.is_mapping(value):
            problems, kept[key] = _seed_problems(value, lambda name: source("seed", name))
            for sentence, fix in problems:
                fail(sentence, fix)
            continue
        if key in ("databases", "ports") and config.is_mapping(value):
            kept[key] = {}
            for name in value:
                entry = value[name]
                found = config.validate({key: {name: entry}}, layers)
                verb = "rename" if name not in registry.NAMES else "fix"
                for problem in found:
                    fail(problem, fix_at(source(key, str(name)), verb))
                if not found:
                    kept[key][name] = entry
            continue
        found = config.validate({key: value}, layers)
        for problem in found:
            fail(problem, fix_at(source(str(key)), "rename" if key not in config.DEFAULTS else "fix"))
        if not found:
            kept[key] = value
    names = env_names()
    for name in sorted(n for n in environ if n.upper().startswith(ENV_PREFIX)):
        if name.upper() in names or name.upper()[len(ENV_PREFIX) :].lower() in NESTED:  # whole: precheck
            continue
        hint = difflib.get_close_matches(name.upper(), list(names), n=1)
        guess = f"; did you mean {hint[0]}" if hint else ""
        fail(f"{name} is not a setting, so Invoke ignores it{guess}", f"rename or unset {name}")
    for path, value in _set_values(kept):
        where = source(*path)
        if where != "the defaults":
            rows.append(Check("config", True, f"devstack.{'.'.join(path)} = {_show(value)} ({where})"))
    if not kept.get("broker_url") and environ.get(config.BROKER_ENV):
        rows.append(
            Check("config", True, f"broker URL {mask_url(environ[config.BROKER_ENV])} ({config.BROKER_ENV})")
        )
    if environ.get("DJANGO_ENV", "").strip().lower() in {"prod", "production"}:
        rows.append(
            Check(
                "config",
                None,
                "DJANGO_ENV says production, so every writing task refuses",
                "unset DJANGO_ENV for development data",
            )
        )
    if not rows:
        files = [shown(f, root) for f in config.config_files(root)]
        read = f" (read: {', '.join(files)})" if files else ""
        rows.append(Check("config", True, f"every setting is the default{read}"))
    try:
        settings = config.from_config(kept, root)
    except UsageError:  # cannot happen with validated values; the defaults then
        settings = Settings(root=root, broker_url=config.resolve_broker_url("", environ))
    return rows, settings


def _set_values(section: Mapping[str, Any]) -> Iterable[tuple[tuple[str, ...], Any]]:
    for key, value in section.items():
        if key in config.INTERNAL:
            continue
        if key in NESTED and isinstance(value, Mapping):
            for name, entry in value.items():
                yield (key, str(name)), entry
        else:
            yield (key,), value


def _show(value: object) -> str:
    if value is None or value == "":
        return "''" if value == "" else "none"
    return mask_url(str(value))


# -- RabbitMQ --------------------------------------------------------------------------------


def check_rabbit(settings: Settings, timeout: float = TIMEOUT) -> Check:
    """The staged probe of ``check-rabbit``: TCP, AMQP login, virtual host. Nothing is declared."""
    try:
        broker = rabbit.parse(settings.broker_url)
        rabbit.probe(broker, timeout=timeout)
    except StackError as exc:
        detail, fix = split_sentence(str(exc), "fix broker_url")
        return Check("rabbitmq", False, detail, fix)
    return Check(
        "rabbitmq", True, f"{broker.masked}: login as '{broker.user}', virtual host '{broker.vhost}'"
    )


# -- databases -------------------------------------------------------------------------------


def run_pgprobe(
    settings: Settings, service: registry.Service, url: str, timeout: int = TIMEOUT
) -> dict[str, Any]:
    """Connect to ``url`` with psycopg: here when the runner has it, else in the service's virtualenv."""
    if importlib.util.find_spec("psycopg") is not None:
        return pgprobe.probe(url, timeout)
    python = venvs.venv_python(settings.venv_dir(service))
    if not python.exists():
        return {"ok": False, "driver": False, "error": f"{service.name} has no virtualenv"}
    env = {**os.environ, pgprobe.URL_VARIABLE: url}
    command = [str(python), "-I", "-B", str(Path(pgprobe.__file__).resolve())]
    failed = {"ok": False, "driver": False, "error": f"the check did not run in {service.name}'s virtualenv"}
    try:
        done = subprocess.run(
            command, cwd=settings.root, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return {**failed, "error": f"{failed['error']} ({exc})"}
    try:
        report = json.loads(done.stdout)
    except ValueError:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {**failed, "error": f"{failed['error']} ({said})"}
    return report if isinstance(report, dict) else failed


def createdb_command(url: str, name: str) -> str:
    """The ``createdb`` command line that creates database ``name`` where ``url`` points."""
    parts = urlsplit(url)
    words = ["createdb"]
    if parts.hostname:
        words += ["-h", parts.hostname]
    if parts.port:
        words += ["-p", str(parts.port)]
    if parts.username:
        words += ["-U", parts.username]
    return " ".join([*words, name])


def with_password(url: str, role: str) -> str:
    """``url`` with a placeholder password for ``role``: what to write in the setting."""
    parts = urlsplit(url)
    where = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{role}:PASSWORD@{where}{parts.path}"


def postgres_check(
    service: str, url: str, report: Mapping[str, Any], remote: bool, allow_remote: bool
) -> Check:
    """Turn a :mod:`devstack.pgprobe` report into one row, with the fix for each failure."""
    masked = mask_url(url)
    setting = f"devstack.databases.{service}"
    parts = urlsplit(url)
    user = parts.username or ""
    hostport = f"{parts.hostname or 'the local socket'}" + (f":{parts.port}" if parts.port else "")
    if report.get("ok"):
        server = str(report.get("server") or "").split(" ")[0]
        where = f"{service}: {masked} as role {report.get('role')}" + (
            f" (PostgreSQL {server})" if server else ""
        )
        if remote and not allow_remote:
            return Check(
                "database",
                None,
                f"{where}, not on this machine; writing tasks refuse it",
                "pass --allow-remote to write to it, or point it at local data",
            )
        return Check("database", True, where + (", not on this machine" if remote else ""))
    error = mask_text(str(report.get("error") or "no answer"))
    if report.get("driver") is False:
        return Check(
            "database",
            None,
            f"{service}: {masked} not checked ({error})",
            f"run 'inv install --service {service}'",
        )
    lower = error.lower()
    missing = re.search(r'database "([^"]+)" does not exist', error)
    if missing:
        name = missing.group(1)
        other = report.get("maintenance") or {}
        if other.get("ok"):
            role = str(other.get("role") or user)
            may = bool(other.get("createdb") or other.get("superuser"))
            how = f"role {role} may create it" if may else f"role {role} may not create databases"
            fix = f"{createdb_command(url, name)}, or point {setting} at an existing database"
            if not may:
                fix = (
                    f"run 'createdb -O {role} {name}' as a role that may create databases "
                    f"(sudo -u postgres on Debian), or fix {setting}"
                )
            return Check(
                "database", False, f"{service}: database {name} does not exist on {hostport} ({how})", fix
            )
        return Check(
            "database",
            False,
            f"{service}: database {name} does not exist on {hostport}",
            f"{createdb_command(url, name)}, or point {setting} at an existing database",
        )
    refused = re.search(r'password authentication failed for user "([^"]+)"', error)
    if refused:
        role = refused.group(1)
        return Check(
            "database",
            False,
            f"{service}: PostgreSQL refused the password of role {role} ({masked})",
            f"put the right password in the URL, {with_password(url, role)}, in {setting}",
        )
    if "no password supplied" in lower or "password is required" in lower:
        role = user or "your role"
        return Check(
            "database",
            False,
            f"{service}: PostgreSQL asks role {role} for a password and {masked} has none",
            f"put it in the URL, {with_password(url, user or 'ROLE')}, in {setting}",
        )
    no_role = re.search(r'role "([^"]+)" does not exist', error)
    if no_role:
        role = no_role.group(1)
        return Check(
            "database",
            False,
            f"{service}: PostgreSQL at {hostport} has no role {role}",
            f"create it as a superuser ('createuser --createdb {role}'), or name another role in {setting}",
        )
    if "resolve host" in lower or "translate host name" in lower:
        return Check(
            "database", False, f"{service}: the host of {masked} is unknown", f"fix the host in {setting}"
        )
    if any(
        s in lower
        for s in ("refused", "could not connect", "timeout", "is the server running", "no such file")
    ):
        return Check(
            "database",
            False,
            f"{service}: PostgreSQL at {hostport} does not answer",
            f"start it, or fix the host and port in {setting}",
        )
    first = error.splitlines()[0].removeprefix("connection failed: ")
    return Check("database", False, f"{service}: cannot connect to {masked} ({first})", f"check {setting}")


def check_database(
    settings: Settings, service: registry.Service, probe: Callable[..., dict[str, Any]] = run_pgprobe
) -> Check:
    """SQLite: the file (or where it will be created); PostgreSQL: connect, as the service would."""
    url = settings.database_url(service.name)
    root = settings.root
    setting = f"devstack.databases.{service.name}"
    if not url or urlsplit(url).scheme.lower().startswith("sqlite"):
        path = sqlite_path(settings, service)
        if path is None:
            return Check(
                "database", False, f"{service.name}: {mask_url(url)} names no file", f"fix {setting}"
            )
        if path.exists():
            return Check("database", True, f"{service.name}: sqlite {shown(path, root)}")
        if not path.parent.is_dir():
            return Check(
                "database",
                False,
                f"{service.name}: the folder of sqlite {shown(path, root)} does not exist",
                f"create it, or fix {setting}",
            )
        return Check(
            "database", True, f"{service.name}: sqlite {shown(path, root)} (inv seed-all creates it)"
        )
    scheme = urlsplit(url).scheme.lower().split("+")[0]
    if scheme not in POSTGRES_SCHEMES:
        return Check(
            "database",
            None,
            f"{service.name}: {mask_url(url)} not checked (doctor checks SQLite and PostgreSQL)",
            "check it yourself",
        )
    try:
        remote = not is_local(url)
    except ValueError as exc:
        return Check(
            "database",
            False,
            f"{service.name}: the URL {mask_url(url)} is malformed ({exc})",
            f"fix {setting}",
        )
    return postgres_check(service.name, url, probe(settings, service, url), remote, settings.allow_remote)


# -- ports, disk -----------------------------------------------------------------------------


def check_ports(settings: Settings, tracked: Mapping[str, psutil.Process]) -> list[Check]:
    """Each dev server port: free, served by the runner's own server, or taken (by whom)."""
    rows: list[Check] = []
    seen: dict[int, str] = {}
    for each in servers.every(settings):
        name, port = each.service.name, each.port
        if port in seen:
            rows.append(
                Check(
                    "port", False, f"{name} {port} is {seen[port]}'s port too", f"set devstack.ports.{name}"
                )
            )
            continue
        seen[port] = name
        proc = tracked.get(each.name)
        if proc is not None:
            rows.append(Check("port", True, f"{name} {port}: the runner's {each.name} (PID {proc.pid})"))
        elif servers.port_free(port):
            rows.append(Check("port", True, f"{name} {port} is free"))
        else:
            rows.append(
                Check(
                    "port",
                    False,
                    f"{name} {port} is taken by {servers.port_holder(port)}",
                    f"stop it, or set devstack.ports.{name}",
                )
            )
    return rows


def gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"


def check_disk(root: Path, free: int | None = None) -> Check:
    """Free space on the checkout's disk: a warning under 1 GiB, a failure under 300 MiB."""
    free = shutil.disk_usage(root).free if free is None else free
    detail = f"{gib(free)} free on the checkout's disk"
    need = "free space: the virtualenvs take about 90 MB each, a large seed more"
    if free < DISK_FAIL:
        return Check("disk", False, f"only {detail} (under {DISK_FAIL >> 20} MiB)", need)
    if free < DISK_WARN:
        return Check("disk", None, f"only {detail} (under 1 GiB)", need)
    return Check("disk", True, detail)


# -- virtualenvs -----------------------------------------------------------------------------


def stale_reasons(venv: Path, stamp: Mapping[str, str], source: Path) -> list[str]:
    """Why a virtualenv is not current, as ``inv install`` decides it (see ``venvs.is_current``)."""
    reasons: list[str] = []
    try:
        recorded = json.loads((venv / venvs.STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        reasons.append("was not built by 'inv install' (no stamp)")
        recorded = {}
    elif recorded.get("python") != stamp["python"]:
        reasons.append(f"was built with Python {recorded.get('python')}, not {stamp['python']}")
    elif recorded.get("requirements") != stamp["requirements"]:
        reasons.append("requirements.txt changed since it was built")
    elif recorded.get("lock") != stamp["lock"]:
        reasons.append(f"{source.name} changed since it was built")
    made = venvs.venv_version(venv)
    if made is not None and made != sys.version_info[:2]:
        reasons.append(f"is a Python {made[0]}.{made[1]} virtualenv")
    drift = venvs.installed_drift(venv, source)
    if drift:
        reasons.append(f"differs from {source.name} ({drift.describe()})")
    if not reasons:
        reasons.append("differs from what 'inv install' verified")
    return reasons


def check_venv(settings: Settings, service: registry.Service) -> Check:
    """The service's virtualenv is current: built by 'inv install' from the lock, nothing missing."""
    root = settings.root
    venv = settings.venv_dir(service)
    requirements = service.folder(root) / "requirements.txt"
    name = service.name
    if not requirements.is_file():
        return Check("venv", False, f"{name}: {shown(requirements, root)} is missing", "restore it from git")
    lock = venvs.lock_path(requirements)
    if lock.is_file():
        problems = venvs.lock_problems(requirements, lock)
        if problems:
            return Check(
                "venv",
                False,
                f"{name}: {shown(lock, root)} does not match requirements.txt ({'; '.join(problems)})",
                "regenerate it: " + " ".join(venvs.compile_command(requirements)),
            )
    if not venvs.venv_python(venv).exists():
        return Check("venv", False, f"{name}: no virtualenv at {shown(venv, root)}", "run 'inv install'")
    stamp = venvs.stamp_for(requirements)
    source = venvs.install_source(requirements)
    if venvs.is_current(venv, stamp, source):
        return Check("venv", True, f"{name}: {shown(venv, root)} matches {source.name}")
    reasons = "; ".join(stale_reasons(venv, stamp, source))
    return Check(
        "venv", False, f"{name}: {shown(venv, root)} {reasons}", f"run 'inv install --service {name}'"
    )


# -- leftover workers and servers ------------------------------------------------------------


def tracked_processes(settings: Settings) -> tuple[dict[str, psutil.Process], list[workers.Worker]]:
    """The runner's own live servers, workers and relay by name, and those with a stale PID file."""
    alive: dict[str, psutil.Process] = {}
    stale: list[workers.Worker] = []
    for each in servers.everything(settings):
        proc, gone = workers.recorded(settings, each)
        if proc is not None:
            alive[each.name] = proc
        elif gone:
            stale.append(each)
    return alive, stale


def _family(procs: Iterable[psutil.Process]) -> set[int]:
    pids: set[int] = set()
    for proc in procs:
        pids.add(proc.pid)
        try:
            pids.update(child.pid for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return pids


def _is_celery_worker(cmdline: Sequence[str]) -> bool:
    named = any(Path(arg).name.lower() in ("celery", "celery.exe") for arg in cmdline)
    return (named or "celery" in cmdline) and "worker" in cmdline


#: What to do about a process of the checkout the runner did not start, by what it is.
STRAY_FIXES = {
    "runserver": "stop it ('inv down' does not know it){sqlite}",
    "holder": "stop it{sqlite}",
    "celery": "stop it ('inv down' does not know it); it takes this checkout's sync events off the broker",
    "relay": "stop it ('inv down' does not know it); it relays the outbox beside the runner's relay",
}
SQLITE_FIX = "; writing tasks refuse while it runs, or stop it with --stop-servers"


def strays(settings: Settings, exclude: Iterable[int] = ()) -> list[tuple[str, Holder, str]]:
    """Processes of this checkout's services the runner does not track: (service, process, fix).

    A dev server of a service (``manage.py runserver``), a Celery worker or an outbox relay
    running in a service's folder, and any process holding a service's SQLite file.
    """
    skip = set(exclude) | own_family()
    folders = {s.name: s.folder(settings.root).resolve() for s in registry.SERVICES}
    found: dict[int, tuple[str, Holder, str]] = {}

    def fix(kind: str, service: str) -> str:
        uses_sqlite = sqlite_path(settings, registry.get(service)) is not None
        return STRAY_FIXES[kind].format(sqlite=SQLITE_FIX if uses_sqlite else "")

    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid in skip:
            continue
        cmdline: list[str] = proc.info["cmdline"] or []
        relay = "relay_events" in cmdline
        celery = _is_celery_worker(cmdline)
        if not (relay or celery or "runserver" in cmdline):
            continue
        try:
            cwd: str | None = proc.cwd()
        except (psutil.Error, OSError):
            cwd = None
        for name, folder in folders.items():
            inside = cwd is not None and normcase(str(Path(cwd).resolve())) == normcase(str(folder))
            if is_runserver(cmdline, cwd, folder):
                kind, why = "runserver", f"runs {name}'s manage.py runserver"
            elif inside and celery:
                kind, why = "celery", f"is a Celery worker of {name}"
            elif inside and relay:
                kind, why = "relay", f"relays {name}'s outbox"
            else:
                continue
            found[proc.pid] = (name, Holder(proc.pid, short_command(cmdline, 60), why), fix(kind, name))
            break
    for service in registry.SERVICES:
        database = sqlite_path(settings, service)
        if database is None or not database.exists():
            continue
        for holder in find_holders(database, service.folder(settings.root), skip):
            if holder.pid not in found:
                short = Holder(holder.pid, short_command(holder.cmdline.split(), 60), holder.why)
                found[holder.pid] = (service.name, short, fix("holder", service.name))
    return list(found.values())


def check_processes(
    settings: Settings, alive: Mapping[str, psutil.Process], stale: Sequence[workers.Worker]
) -> list[Check]:
    """The runner's own processes (information), stale PID files (warnings), strays (failures)."""
    rows: list[Check] = []
    for service, holder, fix in strays(settings, _family(alive.values())):
        detail = f"{service}: PID {holder.pid} ({holder.cmdline}) {holder.why}, not started by the runner"
        rows.append(Check("processes", False, detail, fix))
    for each in stale:
        rows.append(
            Check(
                "processes",
                None,
                f"{each.name}'s PID file names a process that is gone",
                "'inv down' (or 'inv status') drops it",
            )
        )
    mine = ", ".join(f"{name} (PID {proc.pid})" for name, proc in alive.items())
    if mine:
        rows.append(Check("processes", True, f"the runner's {mine} run ('inv down' stops them)"))
    if not rows:
        rows.append(Check("processes", True, "no leftover worker or dev server"))
    return rows


# -- running and printing --------------------------------------------------------------------


def safely(name: str, check: Callable[[], list[Check]]) -> Callable[[], list[Check]]:
    """A check that cannot stop the others: an unexpected error becomes its failed row."""

    def run() -> list[Check]:
        try:
            return check()
        except Exception as exc:
            what = mask_text(f"{type(exc).__name__}: {exc}")
            return [Check(name, False, f"the check itself failed ({what})", "please report it")]

    return run


def run_checks(settings: Settings, config_checks: Sequence[Check] = (), readable: bool = True) -> list[Check]:
    """Run every check, in parallel where they wait, and return their rows in a fixed order.

    ``config_checks`` are the rows of :func:`check_config`. With ``readable`` False the
    configuration could not be read at all: the checks that depend on it are not run.
    """
    uv = venvs.find_uv()
    version = tuple(sys.version_info[:3])
    groups: list[tuple[str, Callable[[], list[Check]]]] = [
        ("python", lambda: [check_python(version, bundled_pip(), uv)]),
        ("uv", lambda: [check_uv(uv, uv_version(uv) if uv else "")]),
        ("config", lambda: list(config_checks)),
    ]
    disk = ("disk", lambda: [check_disk(settings.root)])
    if not readable:
        why = "not checked until the configuration can be read"
        for name in NEEDS_CONFIG:
            groups.append(
                (name, partial(lambda n: [Check(n, None, why, "fix the config failures above")], name))
            )
            if name == "port":
                groups.append(disk)
    else:
        alive, stale = tracked_processes(settings)
        groups.append(("rabbitmq", lambda: [check_rabbit(settings)]))
        groups += [
            ("database", partial(lambda s: [check_database(settings, s)], s)) for s in registry.SERVICES
        ]
        groups += [("port", lambda: check_ports(settings, alive)), disk]
        groups += [("venv", partial(lambda s: [check_venv(settings, s)], s)) for s in registry.SERVICES]
        groups.append(("processes", lambda: check_processes(settings, alive, stale)))
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = list(pool.map(lambda group: safely(*group)(), groups))
    return [row for rows in done for row in rows]


def report(checks: Sequence[Check], as_json: bool = False, stream: TextIO | None = None) -> int:
    """Print the rows (or one JSON document); return the exit code: 1 when a check failed."""
    out = stream or sys.stdout
    failed = [c for c in checks if c.ok is False]
    if as_json:
        json.dump({"ok": not failed, "checks": [c.to_json() for c in checks]}, out, indent=2)
        out.write("\n")
    else:
        console = Console(out)
        for check in checks:
            console.check(check.status, check.name, check.text())
        warned = sum(1 for c in checks if c.ok is None)
        console.info(
            f"{len(failed)} failed, {warned} warning(s), {len(checks) - len(failed) - warned} ok"
            + ("; fix the failures above, then run 'inv doctor' again" if failed else "")
        )
    return FAILED if failed else 0


def requested(argv: Sequence[str]) -> bool:
    """Tell whether the command line runs ``doctor`` (for ``tasks.py``, before Invoke parses it)."""
    words = list(argv[1:])
    words = words[: words.index("--")] if "--" in words else words
    return "doctor" in words and not {"-h", "--help", "-l", "--list"} & set(words)


def unreadable(
    root: Path, problems: Sequence[str], as_json: bool, environ: Mapping[str, str] = os.environ
) -> int:
    """Doctor when Invoke cannot load the configuration: its problems, then what needs none."""
    rows = [
        Check("config", False, *split_sentence(short_text(p, root), "fix or remove it")) for p in problems
    ]
    settings = Settings(root=root, broker_url=config.resolve_broker_url("", environ))
    try:  # outside Invoke and cli.guarded: tasks.py calls this while it loads
        return report(run_checks(settings, rows, readable=False), as_json)
    except KeyboardInterrupt:
        return 130
