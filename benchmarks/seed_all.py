"""Benchmark seed-all: fresh, no-op re-run (verified fast path), re-run without it, broker sync.

Runs the real ``inv`` in temporary copies of the repo and prints seconds and ratios, e.g.
``python benchmarks/seed_all.py --employees 9991``. Needs RabbitMQ on localhost.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack.workspace import copy_checkout  # noqa: E402


def inv(repo: Path, *args: str) -> float:
    """Run ``inv <args>`` in ``repo``; return its wall time, failing loudly on error."""
    return run(repo, *args)[0]


def run(repo: Path, *args: str) -> tuple[float, str]:
    """Run ``inv <args>`` in ``repo``; return its wall time and output."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=repo, capture_output=True, text=True,
        env={**os.environ, "NO_COLOR": "1"}, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"inv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--employees", type=int, default=9991, help="auth employees to sync over RabbitMQ")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = copy_checkout(REPO, Path(tmp) / "repo")
        fresh = inv(repo, "seed-all")
        noop = inv(repo, "seed-all")
        (repo / ".devstack" / "verified.json").unlink()
        checked = inv(repo, "seed-all")
        inv(repo, "seed.auth", "--auth-employees", str(args.employees))
        broker, said = run(repo, "sync", "--via", "broker", "--timeout", "300")
        status = json.loads(
            subprocess.run(
                [sys.executable, "-m", "invoke", "status", "--json"],
                cwd=repo,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    synced = status["services"]["helpdesk"]["counts"]["ExternalEmployee"]
    rows = [
        ("fresh seed-all (virtualenvs, migrations, seeds, sync, verify)", fresh, 1.0),
        ("second seed-all, nothing changed (verified fast path)", noop, noop / fresh),
        ("seed-all, nothing changed, each step checks (one process per service)", checked, checked / fresh),
        (f"sync --via broker of {args.employees:,} employee events", broker, broker / fresh),
    ]
    for label, seconds, ratio in rows:
        print(f"{label:<72} {seconds:7.2f} s  {ratio:6.3f}x fresh")
    print(f"broker sync rate, whole command: {args.employees / broker:,.0f} events/s")
    rate = re.search(r"all applied ([0-9.]+) s after the workers started \(([0-9,]+) events/s\)", said)
    if rate:
        print(f"broker sync rate, workers' start to all applied ({rate[1]} s): {rate[2]} events/s")
    print(f"helpdesk ExternalEmployee rows after the broker sync: {synced:,}")


if __name__ == "__main__":
    main()
