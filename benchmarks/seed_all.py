"""Benchmark seed-all and the sync, each figure next to the limit it is measured against in the same run.

Runs the real ``inv`` in a temporary copy of the repo and prints the median of ``--runs`` runs
of each figure, with its limit and the ratio::

    python benchmarks/seed_all.py --employees 9991 --runs 3 --json .devstack/benchmark.json

- a fresh clone to verified (``inv seed-all`` in a new copy of the work tree: virtualenvs from
  the package cache, migrations, seeds, sync, verify) against the sum of its steps' own times
  (what it would take with nothing overlapping), and against the 20 s target;
- seed-all as a no-op (verified fast path) and with each step checking;
- the broker sync of ``--employees`` auth employee events, from the workers' start until all are
  applied (as ``inv sync --via broker`` reports it), against raw AMQP: as many persistent
  messages published with confirms and consumed with acknowledgements (``amqp_raw.py``);
- the local sync of the same events (the sync step's time), against applying them in one
  process: the helpdesk's ``handle_event`` in one transaction on a copy of its database;
- ``inv status``, ``inv verify`` and an idle ``inv sync`` on the seeded stack, against
  ``inv --list``.

Each sync run starts from the same state: a snapshot taken after the auth seed. Needs RabbitMQ
on localhost and ``rabbitmqctl`` (the raw benchmark's private virtual host).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.amqp_raw import raw_seconds  # noqa: E402
from devstack.workspace import copy_checkout  # noqa: E402

APPLIED = re.compile(r"all applied ([0-9.]+) s after the workers started")
SYNC_STEP = re.compile(r"OK sync \(([0-9.]+) s\)")


def run(repo: Path, *args: str) -> tuple[float, str]:
    """Run ``inv <args>`` in ``repo``; return its wall time and output, exiting when it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=repo, capture_output=True, text=True,
        env={**os.environ, "NO_COLOR": "1"}, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"inv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def inv(repo: Path, *args: str) -> float:
    return run(repo, *args)[0]


def found(pattern: re.Pattern[str], output: str, what: str) -> float:
    """The number ``pattern`` finds in a command's output (exit when it is not there)."""
    match = pattern.search(output)
    if match is None:
        sys.exit(f"The output of {what} does not say how long it took:\n{output}")
    return float(match[1])


def median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def fresh_clone(folder: Path) -> tuple[float, float]:
    """``inv seed-all`` in a new copy of the work tree: its wall time and the sum of its steps' times."""
    repo = copy_checkout(REPO, folder)
    seconds = inv(repo, "seed-all", "--report", "fresh.json")
    report = json.loads((repo / "fresh.json").read_text(encoding="utf-8"))
    return seconds, sum(float(step["seconds"]) for step in report["steps"])


def in_process(repo: Path, events: Path) -> float:
    """Seconds the helpdesk takes to apply ``events`` in one transaction, in its own interpreter."""
    service = repo / "services" / "helpdesk"
    python = service / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "db.sqlite3"
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{database.as_posix()}", "DJANGO_DEBUG": "0"}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        subprocess.run([str(python), "manage.py", "migrate", "-v0"], cwd=service, env=env, check=True)
        code = (
            "import django, json, sys, time; django.setup()\n"
            "from django.db import connection, transaction\n"
            "from helpdesk.handlers import handle_event\n"
            "events = [json.loads(line) for line in open(sys.argv[1], encoding='utf-8')]\n"
            "connection.ensure_connection(); started = time.perf_counter()\n"
            "with transaction.atomic():\n"
            "    for event in events: handle_event(event)\n"
            "print(time.perf_counter() - started)\n"
        )
        env["DJANGO_SETTINGS_MODULE"] = "config.settings"
        done = subprocess.run(
            [str(python), "-c", code, str(events)], cwd=service, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            sys.exit(f"Applying the events in process failed:\n{done.stderr}")
        return float(done.stdout.strip().splitlines()[-1])


def export_events(repo: Path, target: Path) -> None:
    """Write auth's pending events (JSON lines) to ``target``."""
    service = repo / "services" / "auth"
    python = service / ".venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    with target.open("w", encoding="utf-8") as out:
        command = [str(python), "manage.py", "export_events"]
        subprocess.run(command, cwd=service, env=env, stdout=out, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--employees", type=int, default=9991, help="auth employee events to sync (9,991)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure; medians are printed (3)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    runs, count = args.runs, args.employees
    figures: dict[str, Any] = {"employees": count, "runs": runs}
    with tempfile.TemporaryDirectory() as tmp:
        clones = [fresh_clone(Path(tmp) / f"clone{n}") for n in range(runs)]
        fresh = statistics.median(seconds for seconds, _ in clones)
        parts = statistics.median(total for _, total in clones)
        repo = copy_checkout(REPO, Path(tmp) / "repo")
        inv(repo, "seed-all")
        noop = median(runs, lambda: inv(repo, "seed-all"))

        def checked() -> float:
            (repo / ".devstack" / "verified.json").unlink(missing_ok=True)
            return inv(repo, "seed-all")

        each_step = median(runs, checked)
        small = {name: median(runs, lambda a=name: inv(repo, *a.split())) for name in ("--list", "status")}
        small["verify"] = median(runs, lambda: inv(repo, "verify"))
        small["sync"] = median(runs, lambda: inv(repo, "sync"))  # nothing pending: idle
        inv(repo, "seed.auth", "--auth-employees", str(count))
        inv(repo, "snapshot.save", "benchmark-presync")
        events = Path(tmp) / "events.jsonl"
        export_events(repo, events)

        def synced(*via: str) -> str:
            inv(repo, "snapshot.restore", "benchmark-presync")
            return run(repo, "sync", *via, "--timeout", "300")[1]

        broker = median(runs, lambda: found(APPLIED, synced("--via", "broker"), "inv sync --via broker"))
        local = median(runs, lambda: found(SYNC_STEP, synced(), "inv sync"))
        applied = median(runs, lambda: in_process(repo, events))
        raw = statistics.median(raw_seconds(count, runs, "127.0.0.1:5672", "guest", "guest"))
    figures["seed_all"] = {
        "fresh_clone": fresh, "steps_one_after_another": parts, "noop": noop, "each_step_checks": each_step
    }  # fmt: skip
    figures["broker_sync"] = {"seconds": broker, "raw_amqp": raw, "ratio": broker / raw}
    figures["local_sync"] = {"seconds": local, "in_process": applied, "ratio": local / applied}
    figures["small_commands"] = {
        name: {"seconds": seconds, "ratio": seconds / small["--list"]} for name, seconds in small.items()
    }
    rows = [
        ("fresh clone to verified (virtualenvs, migrations, seeds, sync, verify)", fresh, parts, "its steps"),
        ("  the same steps' own times, added up (nothing overlapping)", parts, parts, "its steps"),
        ("  fresh clone to verified against the 20 s target", fresh, 20.0, "target"),
        ("seed-all, nothing changed (verified fast path)", noop, fresh, "fresh"),
        ("seed-all, nothing changed, each step checks", each_step, fresh, "fresh"),
        (f"broker sync of {count:,} events, workers' start to all applied", broker, raw, "raw AMQP"),
        (f"raw AMQP: {count:,} persistent messages, confirms, consumed and acked", raw, raw, "raw AMQP"),
        (f"local sync of {count:,} events (the sync step)", local, applied, "in process"),
        (f"the same {count:,} events applied in process, one transaction", applied, applied, "in process"),
        *[(f"inv {name}", seconds, small["--list"], "inv --list") for name, seconds in small.items()],
    ]
    print(f"medians of {runs} runs")
    for label, seconds, limit, unit in rows:
        print(f"{label:<72} {seconds:7.2f} s  {seconds / limit:6.2f}x {unit}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
