"""Snapshots of the whole stack, on SQLite and PostgreSQL, with the real ``inv`` in copies of the repo.

A restore must give back every database row for row (the outbox and the processed events
included), a stack that ``verify`` accepts, and a fast path that does not trust the old record.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from devstack import registry
from devstack.venvs import venv_python
from tests.conftest import inv_env, seeded_copy
from tests.test_integration import inv, ok
from tests.test_living_stack import NEW_PEOPLE, django

pytestmark = pytest.mark.integration


def dump(repo: Path) -> dict[str, list[str]]:
    """Every row of every service's SQLite database, as SQL text."""
    found = {}
    for name in registry.NAMES:
        with contextlib.closing(sqlite3.connect(repo / "services" / name / "db.sqlite3")) as db:
            found[name] = list(db.iterdump())
    return found


def break_the_stack(repo: Path) -> None:
    """What people do: add people in auth, delete tickets, drop a whole database."""
    django(repo, "auth", NEW_PEOPLE)
    with contextlib.closing(sqlite3.connect(repo / "services" / "helpdesk" / "db.sqlite3")) as db:
        db.execute("DELETE FROM helpdesk_ticket")
        db.commit()
    for suffix in ("", "-wal", "-shm"):
        (repo / "services" / "workflow" / f"db.sqlite3{suffix}").unlink(missing_ok=True)


def report(repo: Path, name: str) -> dict[str, str]:
    document = json.loads((repo / name).read_text(encoding="utf-8"))
    return {step["step"]: step["status"] for step in document["steps"]}


@pytest.fixture
def repo(tmp_path: Path, seeded_template: Path) -> Path:
    return seeded_copy(seeded_template, tmp_path / "repo")


def test_save_break_restore_gives_every_row_back(repo: Path) -> None:
    saved = dump(repo)
    done = ok(repo, "snapshot.save", "before-migration")
    assert "auth, workflow, helpdesk saved" in done.stdout
    break_the_stack(repo)
    assert inv(repo, "verify").returncode == 6
    ok(repo, "snapshot.restore", "before-migration")
    assert dump(repo) == saved
    ok(repo, "verify")
    ok(repo, "seed-all", "--offline", "--report", "after.json")
    steps = report(repo, "after.json")
    assert steps["verify"] == "ran"  # the old fast-path record was not trusted
    assert {s for s, status in steps.items() if status == "ran"} == {"verify"}  # nothing to repair


def test_list_shows_name_age_size_and_seed_options(repo: Path) -> None:
    ok(repo, "snapshot.save", "one")
    listed = ok(repo, "snapshot.list").stdout
    line = next(line for line in listed.splitlines() if line.startswith("one "))
    assert "s ago" in line and "KiB" in line and "auth, workflow, helpdesk" in line
    assert "auth-employees=0" in line and "tickets=20" in line
    document = json.loads(ok(repo, "snapshot.list", "--json").stdout)
    (only,) = document["snapshots"]
    assert only["name"] == "one" and only["seeds"]["helpdesk"]["tickets"] == 20
    assert set(only["services"]) == set(registry.NAMES)
    ok(repo, "snapshot.delete", "one")
    assert json.loads(ok(repo, "snapshot.list", "--json").stdout)["snapshots"] == []
    assert not (repo / ".devstack" / "snapshots" / "one").exists()


def test_one_service_restores_alone(repo: Path) -> None:
    saved = dump(repo)
    ok(repo, "snapshot.save", "helpdesk-only", "--service", "helpdesk")
    break_the_stack(repo)
    ok(repo, "snapshot.restore", "helpdesk-only")  # holds helpdesk only: restores what it holds
    assert dump(repo)["helpdesk"] == saved["helpdesk"]
    refused = inv(repo, "snapshot.restore", "helpdesk-only", "--service", "auth")
    assert refused.returncode == 2 and "holds no auth" in refused.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("snapshot.restore", "nope"), "There is no snapshot called 'nope'; snapshots: "),
        (("snapshot.save", "../escape"), "A snapshot name is letters, digits"),
        (("snapshot.delete", "nope"), "There is no snapshot called 'nope'"),
    ],
)
def test_bad_names_are_one_sentence(repo: Path, args: tuple[str, ...], message: str) -> None:
    done = inv(repo, *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (repo / "escape").exists()


def test_a_name_is_not_replaced_without_force(repo: Path) -> None:
    ok(repo, "snapshot.save", "twice")
    again = inv(repo, "snapshot.save", "twice")
    assert again.returncode == 2 and "--replace" in again.stderr
    ok(repo, "snapshot.save", "twice", "--replace")


def test_a_foreign_holder_is_refused_and_nothing_changes(repo: Path) -> None:
    ok(repo, "snapshot.save", "held")
    django(repo, "auth", NEW_PEOPLE)
    changed = dump(repo)
    database = repo / "services" / "helpdesk" / "db.sqlite3"
    holder = subprocess.Popen(  # a database GUI with an open transaction
        ["sqlite3", str(database)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("BEGIN; SELECT count(*) FROM helpdesk_ticket;\n")
        holder.stdin.flush()
        holder.stdout.readline()
        refused = inv(repo, "snapshot.restore", "held")
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 3 and "--stop-servers" in refused.stderr
    assert dump(repo) == changed


def test_reset_backups_are_listed_and_restored(repo: Path) -> None:
    saved = dump(repo)["helpdesk"]
    ok(repo, "reset.helpdesk")
    listed = json.loads(ok(repo, "snapshot.list", "--json").stdout)["reset_backups"]
    (backup,) = listed
    assert backup["service"] == "helpdesk" and backup["name"].startswith("helpdesk-")
    assert backup["name"] in ok(repo, "snapshot.list").stdout
    ok(repo, "snapshot.restore", backup["name"])
    assert dump(repo)["helpdesk"] == saved
    ok(repo, "verify")


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_sql(template: Path, server: str, sql: str, database: str = "postgres") -> str:
    """Run ``sql`` on ``database`` of the test server with the template's psycopg; return rows as text."""
    url = urlunsplit(urlsplit(server)._replace(path=f"/{database}"))
    script = (
        "import os, sys, psycopg\n"
        "with psycopg.connect(os.environ['URL'], autocommit=True) as db:\n"
        "    cur = db.execute(sys.stdin.read())\n"
        "    print('\\n'.join(repr(r) for r in cur.fetchall()) if cur.description else '')\n"
    )
    python = venv_python(template / "services" / "auth" / ".venv")
    done = subprocess.run(
        [str(python), "-c", script], input=sql, env={**inv_env(), "URL": url},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def postgres_repo(
    tmp_path: Path, seeded_template: Path, postgres_server: str
) -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of the repo whose services use databases of their own on the test server."""
    repo = seeded_copy(seeded_template, tmp_path / "repo")
    names = {s: f"devstack_snaptest_{uuid.uuid4().hex[:8]}_{s}" for s in registry.NAMES}
    for name in names.values():
        postgres_sql(seeded_template, postgres_server, f'CREATE DATABASE "{name}"')
    urls = {s: urlunsplit(urlsplit(postgres_server)._replace(path=f"/{n}")) for s, n in names.items()}
    lines = "".join(f"    {s}: {u}\n" for s, u in urls.items())
    with (repo / "invoke.yaml").open("a", encoding="utf-8") as config:  # keeps the template's broker_url
        config.write(f"  databases:\n{lines}")
    try:
        yield repo, names
    finally:
        for name in names.values():
            postgres_sql(seeded_template, postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_postgres_snapshots_are_template_databases(
    postgres_repo: tuple[Path, dict[str, str]], seeded_template: Path, postgres_server: str
) -> None:
    repo, names = postgres_repo
    ok(repo, "seed-all", "--offline")
    rows = "SELECT * FROM helpdesk_ticket ORDER BY id"
    saved = postgres_sql(seeded_template, postgres_server, rows, names["helpdesk"])
    outbox = "SELECT * FROM identity_outboxevent ORDER BY seq"
    saved_outbox = postgres_sql(seeded_template, postgres_server, outbox, names["auth"])
    ok(repo, "snapshot.save", "pg")
    taken = json.loads(ok(repo, "snapshot.list", "--json").stdout)["snapshots"][0]
    copies = [entry["database"] for entry in taken["services"].values()]
    assert all(entry["kind"] == "postgres" for entry in taken["services"].values())

    postgres_sql(seeded_template, postgres_server, "DELETE FROM helpdesk_ticket", names["helpdesk"])
    ok(repo, "manage", "auth", "--", "shell", "-c", NEW_PEOPLE)
    ok(repo, "snapshot.restore", "pg")
    assert postgres_sql(seeded_template, postgres_server, rows, names["helpdesk"]) == saved
    assert postgres_sql(seeded_template, postgres_server, outbox, names["auth"]) == saved_outbox
    ok(repo, "verify")

    ok(repo, "snapshot.delete", "pg")
    listed = postgres_sql(seeded_template, postgres_server, "SELECT datname FROM pg_database")
    assert not [c for c in copies if c in listed]


@pytest.mark.postgres
def test_postgres_has_a_fast_path_that_any_write_ends(
    postgres_repo: tuple[Path, dict[str, str]], seeded_template: Path, postgres_server: str
) -> None:
    repo, names = postgres_repo
    ok(repo, "seed-all", "--offline")
    # Any writing transaction on the server moves the mark, other tests' included: on a busy
    # server a no-op run may check the long way (safe); a quiet moment must give the fast path.
    for _ in range(10):
        ok(repo, "seed-all", "--offline", "--report", "again.json")
        again = json.loads((repo / "again.json").read_text(encoding="utf-8"))
        assert again["changed"] is False
        if all("nothing changed since the run verified" in s["detail"] for s in again["steps"][2:]):
            break
    else:
        pytest.skip("other sessions wrote to the PostgreSQL server between every pair of runs")
    ok(repo, "verify")
    postgres_sql(
        seeded_template, postgres_server,
        "DELETE FROM helpdesk_ticket WHERE id = (SELECT min(id) FROM helpdesk_ticket)", names["helpdesk"],
    )  # fmt: skip
    failed = inv(repo, "verify")
    assert failed.returncode == 6 and "1 of 20 seeded Ticket rows are missing" in failed.stderr
    ok(repo, "seed-all", "--offline", "--report", "repaired.json")
    assert report(repo, "repaired.json")["seed.helpdesk"] == "ran"


def test_a_damaged_snapshot_restores_nothing_and_can_be_deleted(repo: Path) -> None:
    ok(repo, "snapshot.save", "broken")
    django(repo, "auth", NEW_PEOPLE)
    changed = dump(repo)
    folder = repo / ".devstack" / "snapshots" / "broken"
    (folder / "helpdesk.sqlite3").unlink()
    missing = inv(repo, "snapshot.restore", "broken")
    assert missing.returncode == 5, missing.stderr
    assert "its copy of helpdesk (.devstack/snapshots/broken/helpdesk.sqlite3) is missing" in missing.stderr
    assert "nothing was restored" in missing.stderr and "please report" not in missing.stderr
    assert dump(repo) == changed  # auth was not restored either
    (folder / "snapshot.json").write_text("garbage", encoding="utf-8")
    damaged = inv(repo, "snapshot.restore", "broken")
    assert damaged.returncode == 5 and "The snapshot 'broken' is damaged" in damaged.stderr
    ok(repo, "snapshot.delete", "broken")
    assert not folder.exists()
