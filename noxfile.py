"""nox sessions: lint, typecheck, tests and the seeded integration run, as CI runs them.

Plain ``nox`` runs every default session, several at a time (``nox.options.parallel``; each
session's output is printed in one block when it ends). ``nox -t quick`` runs lint, the type
checks and the runner's unit tests only.

Python versions: the light sessions (type checks, unit tests) run on every Python of
``PYTHONS`` found on the machine and skip, saying so, the ones that are not; the heavy ones
(the runner's integration tests, the services' tests, the seeded runs) and lint (ruff does not
depend on the interpreter) run on the first one found, so that more Pythons do not multiply
the run time.

PostgreSQL: the server and credentials come from ``DEVSTACK_TEST_POSTGRES`` (a URL of a
database the user may connect to, and a role that may create databases; default
``postgres://postgres@127.0.0.1:5432/postgres``). Its password is never printed.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nox
from filelock import FileLock

from devstack import registry
from devstack.urls import mask_url
from devstack.workspace import copy_checkout

nox.needs_version = ">=2026.8.17"  # sessions in parallel (--parallel)
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False  # a Python that is not there is skipped, said
nox.options.download_python = "never"  # only the Pythons of this machine
nox.options.parallel = 2  # the machine CI runs on has 2 cores
nox.options.sessions = ["tests", "seeded_integration", "unit", "typecheck", "lint"]

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.11", "3.12", "3.13"]
RABBITMQ = ("127.0.0.1", 5672)
POSTGRES_ENV = "DEVSTACK_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect <version> main start (or your OS service manager)",
    "RabbitMQ": "rabbitmq-server -detached (see README, 'Start RabbitMQ')",
}
LINTED = ("devstack", "tasks.py", "noxfile.py", "benchmarks", "services", "tests")
#: The runner's tests that need a server, a service virtualenv, a copy of the repo or a minute.
HEAVY = "integration or rabbitmq or postgres or slow"
#: The others: the unit tests (``nox -t quick``).
UNIT = f"not ({HEAVY})"
#: The heavy sessions name their slowest tests: where the minutes of a run went.
SLOWEST = ("--durations=8", "--durations-min=2")
#: The registry's expected state after a default seed-all, checked apart from ``inv verify``.
EXPECTED = registry.expected_counts()


def found(version: str) -> bool:
    """Tell whether ``python<version>`` (``py -<version>`` on Windows) runs on this machine."""
    command = ["py", f"-{version}"] if os.name == "nt" else [f"python{version}"]
    if shutil.which(command[0]) is None:
        return False
    try:  # a pyenv shim of a version that is installed but not enabled exists and fails
        return subprocess.run([*command, "-c", ""], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


#: The first Python of ``PYTHONS`` found; the heavy sessions run on it only.
FIRST = next((v for v in PYTHONS if found(v)), PYTHONS[0])


def postgres_url() -> str:
    """The PostgreSQL server (and credentials) of the tests: ``DEVSTACK_TEST_POSTGRES``."""
    return os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT


def address(url: str, port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or port


def require(session: nox.Session, name: str, where: tuple[str, int], shown: str = "") -> None:
    """Fail the session in one sentence when a server it needs does not answer."""
    try:
        socket.create_connection(where, timeout=3).close()
    except OSError:
        at = shown or f"{where[0]}:{where[1]}"
        session.error(f"{name} does not answer on {at}; start it: {START_HINTS[name]}.")


def require_postgres(session: nox.Session) -> str:
    url = postgres_url()
    require(session, "PostgreSQL", address(url, 5432), f"{mask_url(url)} ({POSTGRES_ENV})")
    return url


def faster_processes(session: nox.Session) -> None:
    """Byte-compile the session's packages and let Python cache what it compiles.

    Some machines set ``PYTHONDONTWRITEBYTECODE``: every process would compile Django, invoke
    and the services' code from source again (seconds of CPU for each of the hundreds of
    processes the tests start). uv does not compile at install time, and not at all when a
    reused virtualenv already has everything.
    """
    session.env["PYTHONDONTWRITEBYTECODE"] = None
    site = session.run("python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", silent=True)
    session.run(
        "python", "-m", "compileall", "-q", "-j", "0", str(site).strip(), silent=True, success_codes=[0, 1]
    )


def xdist_workers() -> str:
    """Two pytest workers per core: most of the time a test waits for the processes it started."""
    return str(2 * (os.cpu_count() or 1))


@nox.session(python=FIRST, tags=["quick"], allow_parallel=True)
def lint(session: nox.Session) -> None:
    """Lint the runner, tasks, noxfile, services and tests with ruff."""
    session.install("ruff")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session(python=PYTHONS, tags=["quick"], allow_parallel=True)
def typecheck(session: nox.Session) -> None:
    """Type-check the runner package (strict) and the task files with mypy, for this Python."""
    session.install("-e", ".[dev]")
    version = ["--python-version", str(session.python)]
    session.run("mypy", *version)
    session.run("mypy", *version, "--strict", "tasks.py", "noxfile.py")


@nox.session(python=PYTHONS, tags=["quick"], allow_parallel=True)
def unit(session: nox.Session) -> None:
    """Run the runner's unit tests: no server, no service virtualenv, no copy of the repo."""
    session.install("-e", ".[dev]")
    faster_processes(session)
    session.run("pytest", "-m", UNIT, *session.posargs)


@nox.session(python=FIRST, allow_parallel=True)
@nox.parametrize("target", ["runner", *registry.NAMES], ids=["runner", *registry.NAMES])
def tests(session: nox.Session, target: str) -> None:
    """Run the runner's other tests (real servers and processes), or one service's tests."""
    session.env[POSTGRES_ENV] = postgres_url()
    if target == "runner":
        require(session, "RabbitMQ", RABBITMQ)
        session.install("-e", ".[dev]")
        # uv keeps Invoke's own inv when it installs both at once; the runner's (devstack/main.py),
        # which the tests run from the services' folders, is written by installing the runner alone.
        session.install("--force-reinstall", "--no-deps", "-e", ".")
        faster_processes(session)
        session.run(
            "pytest", "-m", HEAVY, "-n", xdist_workers(), "--dist", "loadfile", *SLOWEST, *session.posargs
        )
        return
    folder = registry.get(target).folder(ROOT)
    session.install("-r", str(folder / "requirements-test.txt"))
    faster_processes(session)
    if "HELPDESK_TEST_POSTGRES_URL" not in os.environ:  # helpdesk's name for the same server
        session.env["HELPDESK_TEST_POSTGRES_URL"] = postgres_url()
    session.chdir(folder)
    session.run("pytest", *SLOWEST, *session.posargs)


def shared_venvs(session: nox.Session) -> Path:
    """The services' virtualenvs that every seeded_integration copy links (one set per Python)."""
    return (ROOT / session.cache_dir).resolve() / f"service-venvs-{session.python}"


def link_venvs(copy: Path, venvs: Path) -> None:
    for name in registry.NAMES:
        (copy / "services" / name / ".venv").symlink_to(venvs / name, target_is_directory=True)


@nox.session(python=FIRST, default=False, allow_parallel=True)
def service_venvs(session: nox.Session) -> None:
    """Build (or check) the services' virtualenvs that the seeded_integration copies share."""
    copy = copy_checkout(ROOT, Path(session.create_tmp()).resolve() / "repo")
    session.install("-e", str(copy))
    faster_processes(session)
    venvs = shared_venvs(session)
    venvs.mkdir(parents=True, exist_ok=True)
    link_venvs(copy, venvs)
    session.chdir(copy)
    with FileLock(str(venvs / ".lock")):  # another nox run of this checkout may be at it
        for name in registry.NAMES:  # uv makes a virtualenv behind a link only where one is
            if not (venvs / name / "pyvenv.cfg").is_file():
                shutil.rmtree(venvs / name, ignore_errors=True)
                session.run("uv", "venv", "--quiet", "--python", "python", str(venvs / name))
        session.run("inv", "install", env={"NO_COLOR": "1"})


@nox.session(python=FIRST, requires=["service_venvs"], allow_parallel=True)
@nox.parametrize("database", ["sqlite", "postgres"])
@nox.parametrize("transport", ["local", "broker"])
def seeded_integration(session: nox.Session, database: str, transport: str) -> None:
    """Seed, sync and verify a copy of the repo, twice, as 'inv seed-all' does.

    The copy links the virtualenvs that ``service_venvs`` built (``inv seed-all`` checks them
    and skips the install); building them from scratch is tested by the runner's tests.
    """
    require(session, "RabbitMQ", RABBITMQ)
    copy = copy_checkout(ROOT, Path(session.create_tmp()).resolve() / "repo")
    link_venvs(copy, shared_venvs(session))
    session.install("-e", str(copy))
    faster_processes(session)
    session.chdir(copy)
    # A namespace of this run's own: a developer's stack and a parallel run never meet on the broker.
    env: dict[str, str | None] = {"NO_COLOR": "1", "INVOKE_DEVSTACK_PROJECT": f"nox-{uuid.uuid4().hex[:8]}"}
    names: list[str] = []
    if database == "postgres":
        server = require_postgres(session)
        session.install("psycopg[binary]")
        names = [f"devstack_{uuid.uuid4().hex[:8]}_{name}" for name in registry.NAMES]
        postgres(session, "CREATE", names)
        for service, name in zip(registry.NAMES, names, strict=True):
            env[f"INVOKE_DEVSTACK_DATABASES_{service.upper()}"] = database_url(server, name)
    sync = ["--sync", transport]
    try:
        session.run("inv", "seed-all", *sync, "--report", "first.json", env=env)
        session.run("inv", "seed-all", *sync, "--report", "second.json", env=env)
        second = json.loads((copy / "second.json").read_text(encoding="utf-8"))
        if second["changed"]:
            ran = [s["step"] for s in second["steps"] if s["status"] == "ran"]
            session.error(f"The second seed-all changed something: {', '.join(ran)}.")
        session.run("inv", "verify", env=env)
        status = session.run("inv", "status", "--json", env=env, silent=True)
        check_expected(session, json.loads(str(status)))
    finally:
        if transport == "broker":
            session.run("inv", "workers.purge", "--yes", env=env)  # the run's queues go with it
        if names:
            postgres(session, "DROP", names)


def check_expected(session: nox.Session, status: dict[str, Any]) -> None:
    """Compare ``inv status --json`` with the registry's expected state, independently of ``inv verify``."""
    wrong = []
    for service, expected in EXPECTED.items():
        actual = status["services"][service]["counts"] or {}
        wrong += [
            f"{service} {model}: {actual.get(model)} != {n}"
            for model, n in expected.items()
            if actual.get(model) != n
        ]
    if wrong:
        session.error("Counts differ from the expected state: " + "; ".join(wrong) + ".")
    session.log("Counts match the expected state for every service.")


def database_url(server: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server`` (same user and password)."""
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def postgres(session: nox.Session, verb: str, names: list[str]) -> None:
    """Create or drop the per-service PostgreSQL databases of one session."""
    statements = [f'{verb} DATABASE "{n}"' + (" WITH (FORCE)" if verb == "DROP" else "") for n in names]
    script = (
        "import os, psycopg, sys\n"
        f"with psycopg.connect(os.environ[{POSTGRES_ENV!r}], autocommit=True) as db:\n"
        "    for sql in sys.argv[1:]:\n"
        "        db.execute(sql)\n"
    )
    session.log(f"{verb} DATABASE {', '.join(names)} on {mask_url(postgres_url())}")
    env = {"PGCONNECT_TIMEOUT": "5", POSTGRES_ENV: postgres_url()}  # the URL stays out of the log
    session.run("python", "-c", script, *statements, silent=True, env=env)


@nox.session(python=FIRST, default=False)
def benchmark(session: nox.Session) -> None:
    """Time seed-all, the syncs and the small commands, each next to its limit (medians, ratios)."""
    require(session, "RabbitMQ", RABBITMQ)
    session.install("-e", ".")
    session.run("python", "benchmarks/seed_all.py", *session.posargs)
