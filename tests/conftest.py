"""Shared fixtures: a settings object rooted in a temporary folder with the real registry; one
seeded copy of the repo per test run, which the integration tests copy instead of building
virtualenvs and seeding from scratch each time; the PostgreSQL server of the tests.

``seeded_template`` is built once per run (once for all pytest-xdist workers: they wait for the
first one) by the real ``inv seed-all --offline`` in a fresh copy of the work tree, virtualenvs
included. From it:

- ``fresh_copy`` makes a copy of the work tree as ``copy_checkout`` does (no database, no state)
  whose services' ``.venv`` link the template's virtualenvs: ``inv`` finds them current and
  skips the install;
- ``seeded_copy`` copies the seeded template itself (databases, seed passwords, runner state)
  with the same links. Its verified record (``.devstack/verified.json``) is pointed at the
  copied database files, which are byte for byte the ones the template's run verified, so a
  ``seed-all`` in the copy takes the fast path as it would in the template.

The copies share the template's virtualenvs: a test must not rebuild or edit them (``inv
install --force`` would rebuild them for every test); give such a test a ``copy_checkout`` of
its own.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from filelock import FileLock

from devstack import fastpath, registry
from devstack.config import Settings
from devstack.urls import mask_text, mask_url
from devstack.workspace import copy_checkout

REPO = Path(__file__).resolve().parents[1]
#: The PostgreSQL server and credentials of the tests marked ``postgres`` (and of nox's sessions).
POSTGRES_ENV = "DEVSTACK_TEST_POSTGRES"
POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
#: No broker listens here (the seeded template's ``broker_url``; its copies keep it).
NO_BROKER = "amqp://guest:guest@127.0.0.1:9/none"


#: Slow tests in files that do not mark them themselves (yet): real virtualenvs built with uv and pip.
SLOW = ("tests/test_venvs.py::test_a_real_venv_follows_its_lock",)


def pytest_itemcollected(item: pytest.Item) -> None:
    if item.nodeid.partition("[")[0] in SLOW:
        item.add_marker(pytest.mark.slow)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    for name in ("auth", "workflow", "helpdesk"):
        (tmp_path / "services" / name).mkdir(parents=True)
    return Settings(root=tmp_path)


# -- one seeded copy of the repo per run --------------------------------------------------------


def shared_tmp(factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this run that every pytest-xdist worker sees."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def inv_env() -> dict[str, str]:
    """The environment of a real ``inv`` run by the tests: no service or runner settings of the caller.

    A developer's ``INVOKE_DEVSTACK_*`` (a project, a database) must not reach the tests' copies:
    each copy has its own namespace on the broker, derived from its folder.
    """
    env = {**os.environ, "NO_COLOR": "1"}
    for name in ("DATABASE_URL", "DJANGO_ENV", "CELERY_BROKER_URL", "SYNC_NAMESPACE"):
        env.pop(name, None)
    for name in [n for n in env if n.upper().startswith("INVOKE_DEVSTACK_")]:
        env.pop(name)
    return env


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the work tree seeded by the real ``inv seed-all --offline``, built once per run."""
    root = shared_tmp(tmp_path_factory)
    template, failed = root / "seeded-template", root / "seeded-template.failed"
    with FileLock(str(root / "seeded-template.lock")):
        if failed.exists():
            pytest.fail(failed.read_text(encoding="utf-8"), pytrace=False)
        if (root / "seeded-template.ready").exists():
            return template
        copy_checkout(REPO, template)
        # Offline, and pointed where no broker listens: a developer's RabbitMQ is never met.
        (template / "invoke.yaml").write_text(f"devstack:\n  broker_url: {NO_BROKER}\n", encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "invoke", "seed-all", "--offline", "--report", "first.json"],
            cwd=template,
            env=inv_env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            output = mask_text(f"{done.stdout}\n{done.stderr}")
            failed.write_text(f"inv seed-all --offline failed in the template:\n{output}", encoding="utf-8")
            pytest.fail(failed.read_text(encoding="utf-8"), pytrace=False)
        (root / "seeded-template.ready").touch()
    return template


def link_venvs(template: Path, copy: Path) -> None:
    """Give each service of ``copy`` the template's virtualenv (a copy where links are refused)."""
    for name in registry.NAMES:
        venv = template / "services" / name / ".venv"
        link = copy / "services" / name / ".venv"
        try:
            link.symlink_to(venv, target_is_directory=True)
        except OSError:  # Windows without the right to make links
            shutil.copytree(venv, link, symlinks=True)


def fresh_copy(template: Path, target: Path) -> Path:
    """A ``copy_checkout`` of the work tree at ``target``, with the template's virtualenvs linked."""
    copy = copy_checkout(REPO, target)
    link_venvs(template, copy)
    return copy


def seeded_copy(template: Path, target: Path) -> Path:
    """A copy of the seeded template at ``target``: its files and state, its virtualenvs linked."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(template, target, symlinks=True, ignore=shutil.ignore_patterns(".venv", "run.lock"))
    link_venvs(template, target)
    record = target / ".devstack" / fastpath.RECORD
    verified = json.loads(record.read_text(encoding="utf-8"))
    verified["fingerprint"] = fastpath.fingerprint(Settings(root=target))
    record.write_text(json.dumps(verified, indent=2), encoding="utf-8")
    return target


def linking_checkout(template: Path) -> Callable[[Path, Path], Path]:
    """A ``copy_checkout`` for modules whose tests copy the repo themselves: it links the venvs."""

    def copy(source: Path, target: Path) -> Path:
        copy_checkout(source, target)
        link_venvs(template, target)
        return target

    return copy


# -- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the tests' PostgreSQL server (``DEVSTACK_TEST_POSTGRES``); fail if it is down."""
    url = os.environ.get(POSTGRES_ENV) or POSTGRES_DEFAULT
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=3).close()
    except OSError:
        pytest.fail(f"PostgreSQL does not answer at {mask_url(url)} ({POSTGRES_ENV}).", pytrace=False)
    return url
