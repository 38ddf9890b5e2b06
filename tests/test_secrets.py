"""The planted-password sweep: no task prints, logs or reports a password, on any path.

Unusual passwords (``/ ? # @ % :`` and non-ASCII) are planted in the broker URL and the database
URLs, percent-encoded where a URL needs it (``invoke.yaml``) and raw where a user would paste them
(``INVOKE_DEVSTACK_*``, ``--url``). Every task then runs through the real ``inv`` in a copy of the
seeded template, on failing paths that stay on this machine: a broker and a PostgreSQL server on a
closed local port, databases on ``.invalid`` hosts (refused before any connection: only writing
tasks run there), bad configuration files. Everything the runner printed, logged (``logs/``,
``.devstack/``, the private folder of a bug's traceback) and reported (``--report``) is searched
for each password in every form: raw, percent-encoded, JSON-escaped, and each of its pieces
between the special characters (a URL cut at a ``/`` or ``@`` leaks a piece, not the whole).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

import pytest

from tests.conftest import inv_env, seeded_copy

pytestmark = pytest.mark.integration

#: Each piece between the special characters is a marker that occurs nowhere else.
SPECIAL = "Zq7Q/Kx9K?Wm4W#Pt2P@Hy5H%Rn8R:Lc3L"
UNICODE = "Gf6Gäöü€Jd2J:Vb5V"
#: What a URL reads right even unencoded (up to its last '@'): pasted raw, it reaches every task.
AT_SIGN = "Nm3N@Qw8Q:Ty6Tß"
PASSWORDS = (SPECIAL, UNICODE, AT_SIGN)
PIECES = ("Zq7Q", "Kx9K", "Wm4W", "Pt2P", "Hy5H", "Rn8R", "Lc3L", "Gf6G", "Jd2J", "Vb5V", "äöü€")
PIECES += ("Nm3N", "Qw8Q", "Ty6T")
CLOSED = "127.0.0.1:1"  # nothing listens on port 1


def enc(password: str) -> str:
    return quote(password, safe="")


def forms(password: str) -> set[str]:
    """Every spelling of ``password`` that could end up in output."""
    return {
        password,
        enc(password),
        quote(password),
        quote_plus(password),
        json.dumps(password)[1:-1],
        json.dumps(enc(password))[1:-1],
        password.encode("unicode_escape").decode("ascii"),
    }


NEEDLES = sorted({f for p in PASSWORDS for f in forms(p)} | set(PIECES), key=len, reverse=True)


def leaks(text: str) -> list[str]:
    return [needle for needle in NEEDLES if needle in text]


def test_the_search_finds_every_spelling_and_every_piece() -> None:
    for password in PASSWORDS:
        for form in forms(password):
            assert leaks(f"amqp://guest:{form}@host//")
    assert leaks("postgres://me:Zq7Q@Kx9K/db")  # a piece cut off at a special character
    assert leaks(json.dumps({"url": f"amqp://u:{UNICODE}@h//"}))  # ensure_ascii: Gf6G still shows
    assert not leaks("amqp://guest:***@127.0.0.1:1// does not answer")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path_factory.mktemp("secrets") / "repo")


class Sweep:
    """Runs tasks in the copy with a private TMPDIR and gathers everything they left behind."""

    def __init__(self, repo: Path, tmp: Path) -> None:
        self.repo = repo
        self.tmp = tmp
        self.tmp.mkdir(exist_ok=True)
        self.seen: list[tuple[str, str]] = []  # (where, text)

    def run(self, yaml: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        (self.repo / "invoke.yaml").write_text(yaml, encoding="utf-8")
        environment = {
            **inv_env(),
            **env,
            "TMPDIR": str(self.tmp),
            "TEMP": str(self.tmp),
            "TMP": str(self.tmp),
        }
        done = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.repo,
            env=environment,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=300,
            check=False,
        )
        self.seen.append((f"inv {' '.join(args)}: output", done.stdout + done.stderr))
        return done

    def files(self) -> Iterable[tuple[str, str]]:
        folders = [self.repo / "logs", self.repo / ".devstack", self.repo / "reports", self.tmp]
        for folder in folders:
            for path in sorted(folder.rglob("*")) if folder.exists() else []:
                if path.is_file():
                    yield str(path), path.read_bytes().decode("utf-8", errors="replace")

    def check(self) -> None:
        found = [
            f"{where}: {needle!r}" for where, text in [*self.seen, *self.files()] for needle in leaks(text)
        ]
        assert not found, "passwords leaked:\n" + "\n".join(found)


def yaml_of(broker: str, databases: dict[str, str], extra: str = "") -> str:
    lines = ["devstack:", f"  broker_url: {json.dumps(broker)}", "  databases:"]
    lines += [f"    {name}: {json.dumps(url)}" for name, url in databases.items()]
    return "\n".join(lines) + "\n" + extra


#: Every task, with flags that reach its failing paths; none can reach anything but this machine.
EVERY_TASK = (
    ("status",),
    ("status", "--json"),
    ("verify",),
    ("verify", "--json"),
    ("seed-all", "--report", "reports/online.json"),
    ("seed-all", "--offline", "--report", "reports/offline.json"),
    ("seed.helpdesk", "--tickets", "30"),
    ("migrate",),
    ("sync",),
    ("sync", "--via", "broker", "--timeout", "1"),
    ("check-rabbit",),
    ("workers.status",),
    ("workers.status", "--json"),
    ("workers.start", "--timeout", "1"),
    ("workers.purge", "--yes"),
    ("workers.stop",),
    ("reset.helpdesk", "--yes"),
    ("manage", "helpdesk", "--", "check"),
    ("up", "--timeout", "1"),
    ("down",),
    ("logs",),
)
WRITING_TASKS = (
    ("seed-all", "--offline", "--report", "reports/remote.json"),
    ("seed.helpdesk",),
    ("migrate",),
    ("sync",),
    ("reset.helpdesk", "--yes"),
    ("reset-all", "--yes"),
    ("manage", "helpdesk", "--", "check"),
    ("up", "--timeout", "1"),
)


def test_no_task_prints_logs_or_reports_a_password(repo: Path, tmp_path: Path) -> None:
    sweep = Sweep(repo, tmp_path / "tmp")
    codes: dict[str, int] = {}

    # Percent-encoded in invoke.yaml: the broker and the helpdesk database on closed local ports.
    encoded = yaml_of(
        f"amqp://guest:{enc(SPECIAL)}@{CLOSED}//",
        {"helpdesk": f"postgres://me:{enc(UNICODE)}@{CLOSED}/helpdesk"},
    )
    for args in EVERY_TASK:
        codes[f"encoded {args}"] = sweep.run(encoded, {}, *args).returncode

    # Pasted raw, in the environment and on the command line: what a URL reads right reaches every
    # task; a '/', '?', '#' or lone '%' is refused by the config check, naming the setting.
    raw = {
        "INVOKE_DEVSTACK_BROKER_URL": f"amqp://guest:{UNICODE}@{CLOSED}//",
        "INVOKE_DEVSTACK_DATABASES_HELPDESK": f"postgres://me:{AT_SIGN}@{CLOSED}/helpdesk",
    }
    for args in EVERY_TASK:
        codes[f"raw {args}"] = sweep.run("", raw, *args).returncode
    unencoded = {
        "INVOKE_DEVSTACK_BROKER_URL": f"amqp://guest:{SPECIAL}@{CLOSED}//",
        "INVOKE_DEVSTACK_DATABASES_HELPDESK": f"postgres://me:{SPECIAL}@{CLOSED}/helpdesk",
    }
    for args in (("status",), ("seed-all", "--offline"), ("reset.helpdesk", "--yes")):
        done = sweep.run("", unencoded, *args)
        assert done.returncode == 2 and "must percent-encode" in done.stderr, done.stderr
    sweep.run("", raw, "check-rabbit", "--url", f"amqp://guest:{SPECIAL}@{CLOSED}/vhost")
    sweep.run("", raw, "check-rabbit", "--url", f"amqp://guest:{AT_SIGN}@{CLOSED}/vhost")
    sweep.run("", {"CELERY_BROKER_URL": f"amqp://guest:{SPECIAL}@{CLOSED}//"}, "status")
    sweep.run("", {"CELERY_BROKER_URL": f"amqp://guest:{AT_SIGN}@{CLOSED}//"}, "status", "--json")

    # Remote databases (.invalid hosts): refused before any connection, so only writing tasks run.
    remote = yaml_of(
        f"amqp://guest:{enc(UNICODE)}@{CLOSED}//",
        {"helpdesk": f"postgres://me:{enc(SPECIAL)}@db.example.invalid/helpdesk"},
    )
    remote_env = {
        "INVOKE_DEVSTACK_DATABASES_AUTH": f"postgres://me:{enc(UNICODE)}@/auth?host=db.example.invalid",
        "INVOKE_DEVSTACK_DATABASES_WORKFLOW": f"postgres://me:{AT_SIGN}@db.example.invalid:5432/workflow",
    }
    for args in WRITING_TASKS:
        done = sweep.run(remote, remote_env, *args)
        assert done.returncode == 3, (args, done.stdout, done.stderr)

    # Bad configuration: each problem is named, its value never shown with a password in it.
    url = f"postgres://me:{SPECIAL}@{CLOSED}/helpdesk"
    for bad in (
        f"devstack:\n  broker_url: [{json.dumps(url)}]\n",
        f"devstack:\n  databases: {json.dumps(url)}\n",
        f"devstack:\n  databses: {{helpdesk: {json.dumps(url)}}}\n",
        f"devstack:\n  project: {json.dumps(url)}\n",
        f"devstack:\n  ports: {{helpdesk: {json.dumps(url)}}}\n",
        f"devstack:\n  databases: {{helpdesk: [{json.dumps(url)}]}}\n",
        f"devstack:\n  databases: {{helpdesk: {json.dumps(url.replace('postgres', 'mysql'))}}}\n",
        f"devstack:\n  seed: {json.dumps(url)}\n",
        f"devstack:\n  broker_url: {url} [\n",
        f"devstack:\n  lock_timeout: {json.dumps(url)}\n",
        f"devstack:\n  backup_dir: {{a: {json.dumps(url)}}}\n",
        f"{json.dumps(url)}\n",
    ):
        done = sweep.run(bad, {}, "status")
        assert done.returncode == 2, (bad, done.stdout, done.stderr)
    for name in ("INVOKE_DEVSTACK_DATABASES", "INVOKE_DEVSTACK_SEED", "INVOKE_DEVSTACK_LOCK_TIMEOUT"):
        done = sweep.run("", {name: url}, "status")
        assert done.returncode == 2, (name, done.stdout, done.stderr)

    (repo / "invoke.yaml").write_text("devstack:\n  broker_url: amqp://guest:guest@127.0.0.1:9/none\n")
    assert any(code != 0 for code in codes.values())
    sweep.check()


@pytest.mark.postgres
def test_a_password_in_a_working_postgres_url_is_never_shown(
    repo: Path, tmp_path: Path, postgres_server: str
) -> None:
    """The real server of the tests (its role may need no password: a wrong one is then ignored)."""
    name = f"devstack_secret_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(postgres_server)
    password = parts.password or SPECIAL
    if parts.password is None:  # plant ours
        netloc = f"{parts.username or 'postgres'}:{enc(SPECIAL)}@{parts.hostname}:{parts.port or 5432}"
        parts = parts._replace(netloc=netloc)
    server = urlunsplit(parts)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    admin = [sys.executable, "-c", ADMIN, server]
    helper = {**os.environ, "PYTHONPATH": str(repo)}
    sweep = Sweep(repo, tmp_path / "tmp")
    python = (
        repo / "services" / "helpdesk" / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    )
    admin[0] = str(python)
    subprocess.run([*admin, "create", name], check=True, env=helper, capture_output=True)
    try:
        yaml = yaml_of(f"amqp://guest:{enc(UNICODE)}@{CLOSED}//", {"helpdesk": url})
        for args in (
            ("seed-all", "--offline", "--report", "reports/pg.json"),
            ("status", "--json"),
            ("status",),
            ("verify", "--json"),
            ("reset.helpdesk", "--yes"),
            ("seed.helpdesk", "--tickets", "21"),
        ):
            done = sweep.run(yaml, {}, *args)
            assert args[0] in {"verify"} or done.returncode == 0, (args, done.stdout, done.stderr)
    finally:
        subprocess.run([*admin, "drop", name], check=False, env=helper, capture_output=True)
        (repo / "invoke.yaml").write_text("devstack:\n  broker_url: amqp://guest:guest@127.0.0.1:9/none\n")
    assert password  # the server's own password, if any, is no planted one: only ours are searched
    sweep.check()


ADMIN = """
import sys, psycopg
server, action, name = sys.argv[1:]
with psycopg.connect(server, autocommit=True) as db:
    if action == "create":
        db.execute(f'CREATE DATABASE "{name}"')
    else:
        db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""
