"""Test that the same events and seed give identical rows on two fresh databases."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from .factories import default_auth_events


def _build(database: Path, events_file: Path) -> str:
    """Migrate a fresh SQLite file, apply the events, seed, and dump the seeded rows."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}"}

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    manage("migrate", "-v0")
    manage("apply_events", str(events_file))
    manage("seed", "--seed", "7")
    return manage(
        "dumpdata",
        "workflows.role",
        "workflows.roleuser",
        "workflows.workflow",
        "workflows.step",
        "workflows.transition",
        "--indent",
        "1",
    )


def test_same_seed_on_two_fresh_databases(tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    events_file.write_text(
        "".join(json.dumps(event) + "\n" for event in default_auth_events()), encoding="utf-8"
    )
    first = _build(tmp_path / "a.sqlite3", events_file)
    second = _build(tmp_path / "b.sqlite3", events_file)
    assert json.loads(first)  # not empty
    assert first == second
