"""Plan mode: ``inv seed-all --plan`` and Invoke's ``--dry`` decide every step as a real run would,
write nothing under the checkout, and predict what the next real run does, step for step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import fresh_copy, seeded_copy
from tests.test_integration import inv, ok
from tests.test_living_stack import NEW_PEOPLE, django

pytestmark = pytest.mark.integration

REAL = {"would run": "ran", "would skip": "skipped"}


def tree(root: Path) -> str:
    """A digest of every file and link under ``root``: path, kind, size, modification time, content.

    Folders are listed by their entries, not their times: SQLite's readers create a database's
    ``-wal``/``-shm`` files and remove them when they close, which leaves no file behind but
    touches the folder.
    """
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):  # links (the shared virtualenvs) are not followed
        dirs.sort()
        digest.update(f"{Path(folder).relative_to(root)}/".encode())
        links = [d for d in dirs if (Path(folder) / d).is_symlink()]
        for name in sorted(files + links):
            path = Path(folder) / name
            stat = path.lstat()
            digest.update(
                f"{path.relative_to(root)}|{stat.st_mode}|{stat.st_size}|{stat.st_mtime_ns}".encode()
            )
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def statuses(report: Path) -> dict[str, str]:
    document = json.loads(report.read_text(encoding="utf-8"))
    return {step["step"]: step["status"] for step in document["steps"]}


def plan_then_run(repo: Path, *flags: str) -> tuple[dict[str, str], dict[str, str]]:
    """Plan, check that the plan wrote nothing, then run for real; return both steps' outcomes."""
    before = tree(repo)
    planned = ok(repo, "seed-all", "--plan", *flags)
    assert tree(repo) == before, "the plan changed a file under the checkout"
    assert "WOULD" in planned.stdout
    dry = ok(repo, "--dry", "seed-all", *flags)
    assert tree(repo) == before, "--dry changed a file under the checkout"
    ok(repo, "seed-all", "--plan", "--report", "plan.json", *flags)
    ok(repo, "seed-all", "--report", "real.json", *flags)
    plan, real = statuses(repo / "plan.json"), statuses(repo / "real.json")
    assert [line for line in dry.stdout.splitlines() if "WOULD" in line] == [
        line for line in planned.stdout.splitlines() if "WOULD" in line
    ]
    return plan, real


def predicted(plan: dict[str, str]) -> dict[str, str]:
    return {step: REAL[status] for step, status in plan.items()}


def test_a_plan_on_a_fresh_clone_writes_nothing_and_predicts_the_run(
    tmp_path: Path, seeded_template: Path
) -> None:
    repo = fresh_copy(seeded_template, tmp_path / "repo")
    ok(repo, "--list")  # a checkout that has run inv before (Python's bytecode caches exist)
    plan, real = plan_then_run(repo, "--offline")
    assert predicted(plan) == real
    assert plan["seed.helpdesk"] == "would run" and plan["sync"] == "would run"
    assert not (repo / ".devstack" / "verified.json").exists() or real  # the real run recorded it
    document = json.loads((repo / "plan.json").read_text(encoding="utf-8"))
    assert document["plan"] is True and document["would_change"] is True


def test_a_plan_on_a_used_stack_predicts_the_repairs(tmp_path: Path, seeded_template: Path) -> None:
    repo = seeded_copy(seeded_template, tmp_path / "repo")
    django(repo, "auth", NEW_PEOPLE)  # people add a user and an employee in auth
    with contextlib.closing(sqlite3.connect(repo / "services" / "helpdesk" / "db.sqlite3")) as db:
        db.execute("DELETE FROM helpdesk_ticket WHERE id = (SELECT min(id) FROM helpdesk_ticket)")
        db.commit()
    plan, real = plan_then_run(repo, "--offline")
    assert predicted(plan) == real
    assert plan["sync"] == "would run" and plan["seed.helpdesk"] == "would run"
    assert plan["migrate.auth"] == "would skip"


def test_a_plan_on_a_verified_stack_skips_everything(tmp_path: Path, seeded_template: Path) -> None:
    repo = seeded_copy(seeded_template, tmp_path / "repo")
    plan, real = plan_then_run(repo, "--offline")
    assert predicted(plan) == real
    assert set(plan.values()) == {"would skip"}


def test_dry_is_a_plan_for_the_tasks_that_have_one_and_refused_by_the_others(
    tmp_path: Path, seeded_template: Path
) -> None:
    repo = seeded_copy(seeded_template, tmp_path / "repo")
    before = tree(repo)
    planned = ok(repo, "--dry", "seed.helpdesk", "--tickets", "25")
    assert "WOULD RUN seed.helpdesk: seed with" in planned.stdout
    reset = ok(repo, "--dry", "reset.helpdesk")
    assert "WOULD RUN reset.helpdesk: back up db.sqlite3 to backups with SQLite's backup API" in reset.stdout
    refused = inv(repo, "--dry", "workers.start")
    assert refused.returncode == 2 and "has no plan mode" in refused.stderr
    assert tree(repo) == before
