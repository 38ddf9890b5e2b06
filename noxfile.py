"""nox sessions: lint, typecheck, tests and the seeded integration run, as CI runs them."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import nox

from devstack import registry
from devstack.workspace import copy_checkout

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "typecheck", "tests", "seeded_integration"]

ROOT = Path(__file__).resolve().parent
PYTHON = "3.11"
POSTGRES = ("127.0.0.1", 5432)
RABBITMQ = ("127.0.0.1", 5672)
START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect <version> main start (or your OS service manager)",
    "RabbitMQ": "rabbitmq-server -detached (see README, 'Start RabbitMQ')",
}
LINTED = ("devstack", "tasks.py", "noxfile.py", "benchmarks", "services", "tests")
#: The registry's expected state after a default seed-all, checked apart from ``inv verify``.
EXPECTED = registry.expected_counts()


def require(session: nox.Session, name: str, address: tuple[str, int]) -> None:
    """Fail the session in one sentence when a server it needs does not answer."""
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError:
        session.error(f"{name} does not answer on {address[0]}:{address[1]}; start it: {START_HINTS[name]}.")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Lint the runner, tasks, noxfile, services and tests with ruff."""
    session.install("ruff")
    session.run("ruff", "check", *LINTED)
    session.run("ruff", "format", "--check", *LINTED)


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """Type-check the runner package (strict) and the task files with mypy."""
    session.install("-e", ".[dev]")
    session.run("mypy")
    session.run("mypy", "--strict", "tasks.py", "noxfile.py")


@nox.session(python=PYTHON)
@nox.parametrize("target", ["runner", *registry.NAMES], ids=["runner", *registry.NAMES])
def tests(session: nox.Session, target: str) -> None:
    """Run the runner's tests, or one service's tests in its own virtualenv."""
    if target == "runner":
        require(session, "RabbitMQ", RABBITMQ)
        session.install("-e", ".[dev]")
        session.run("pytest", *session.posargs)
        return
    folder = registry.get(target).folder(ROOT)
    session.install("-r", str(folder / "requirements-test.txt"))
    session.chdir(folder)
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("database", ["sqlite", "postgres"])
@nox.parametrize("transport", ["local", "broker"])
def seeded_integration(session: nox.Session, database: str, transport: str) -> None:
    """Seed, sync and verify a copy of the repo, twice, as 'inv seed-all' does."""
    require(session, "RabbitMQ", RABBITMQ)
    copy = copy_checkout(ROOT, Path(session.create_tmp()).resolve() / "repo")
    session.install("-e", str(copy))
    session.chdir(copy)
    env = {"NO_COLOR": "1"}
    names: list[str] = []
    if database == "postgres":
        require(session, "PostgreSQL", POSTGRES)
        session.install("psycopg[binary]")
        names = [f"devstack_{uuid.uuid4().hex[:8]}_{name}" for name in registry.NAMES]
        postgres(session, "CREATE", names)
        for service, name in zip(registry.NAMES, names, strict=True):
            env[f"INVOKE_DEVSTACK_DATABASES_{service.upper()}"] = (
                f"postgres://postgres@{POSTGRES[0]}:{POSTGRES[1]}/{name}"
            )
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


def postgres(session: nox.Session, verb: str, names: list[str]) -> None:
    """Create or drop the per-service PostgreSQL databases of one session."""
    statements = [f'{verb} DATABASE "{n}"' + (" WITH (FORCE)" if verb == "DROP" else "") for n in names]
    script = (
        "import psycopg, sys\n"
        "with psycopg.connect(sys.argv[1], autocommit=True) as db:\n"
        "    for sql in sys.argv[2:]:\n"
        "        db.execute(sql)\n"
    )
    url = f"postgresql://postgres@{POSTGRES[0]}:{POSTGRES[1]}/postgres"
    session.log(f"{verb} DATABASE {', '.join(names)}")
    session.run("python", "-c", script, url, *statements, silent=True, env={"PGCONNECT_TIMEOUT": "5"})


@nox.session(python=PYTHON, default=False)
def benchmark(session: nox.Session) -> None:
    """Time seed-all fresh, as a no-op and a broker sync; print ratios."""
    require(session, "RabbitMQ", RABBITMQ)
    session.install("-e", ".")
    session.run("python", "benchmarks/seed_all.py", *session.posargs)
