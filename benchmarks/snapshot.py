"""Benchmark snapshots: restoring a stack with 100k tickets against seeding it, with the real ``inv``.

In a temporary copy of the repo (its services' virtualenvs linked from this checkout, which
``inv install`` must have built): time ``inv seed-all --offline --tickets N`` from empty
databases, then ``inv snapshot.save``, break the stack (every ticket deleted), and time ``inv
snapshot.restore``. Prints the seconds of each and the ratio seed / restore::

    python benchmarks/snapshot.py                       # SQLite, 100,000 tickets
    python benchmarks/snapshot.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

``--postgres`` names a server: the benchmark creates and drops a database per service there.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from devstack import registry  # noqa: E402
from devstack.venvs import venv_python  # noqa: E402
from devstack.workspace import copy_checkout  # noqa: E402

NO_BROKER = "amqp://guest:guest@127.0.0.1:9/none"


def inv(repo: Path, *args: str) -> float:
    """Run the real ``inv`` in ``repo``; return its wall time; stop on a failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVSTACK_")}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=repo, env={**env, "NO_COLOR": "1"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"inv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def postgres(server: str, sql: str) -> None:
    """Run one statement on the server's maintenance database with helpdesk's psycopg."""
    python = venv_python(REPO / "services" / "helpdesk" / ".venv")
    script = (
        "import os, sys, psycopg\npsycopg.connect(os.environ['URL'], autocommit=True).execute(sys.argv[1])\n"
    )
    url = urlunsplit(urlsplit(server)._replace(path="/postgres"))
    subprocess.run([str(python), "-c", script, sql], env={**os.environ, "URL": url}, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: SQLite)")
    args = parser.parse_args()
    names = {s: f"devstack_snapbench_{uuid.uuid4().hex[:8]}_{s}" for s in registry.NAMES}
    with tempfile.TemporaryDirectory(prefix="devstack-snapshot-bench-") as folder:
        repo = copy_checkout(REPO, Path(folder) / "repo")
        for name in registry.NAMES:
            (repo / "services" / name / ".venv").symlink_to(REPO / "services" / name / ".venv")
        config = f"devstack:\n  broker_url: {NO_BROKER}\n"
        if args.postgres:
            for name in names.values():
                postgres(args.postgres, f'CREATE DATABASE "{name}"')
            urls = {s: urlunsplit(urlsplit(args.postgres)._replace(path=f"/{n}")) for s, n in names.items()}
            config += "  databases:\n" + "".join(f"    {s}: {u}\n" for s, u in urls.items())
        (repo / "invoke.yaml").write_text(config, encoding="utf-8")
        label = "PostgreSQL" if args.postgres else "SQLite"
        try:
            seed = inv(repo, "seed-all", "--offline", "--tickets", str(args.tickets))
            save = inv(repo, "snapshot.save", "bench")
            inv(repo, "manage", "helpdesk", "--", "shell", "-c",
                "from helpdesk.models import Ticket; Ticket.objects.all().delete()")  # fmt: skip
            restore = inv(repo, "snapshot.restore", "bench")
            inv(repo, "seed-all", "--offline", "--tickets", str(args.tickets))  # verifies the restore
        finally:
            if args.postgres:
                if (repo / ".devstack" / "snapshots" / "bench").exists():
                    inv(repo, "snapshot.delete", "bench")  # its template databases
                for name in names.values():
                    postgres(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"{label}, {args.tickets:,} tickets")
    print(f"  seed-all from empty databases  {seed:8.2f} s")
    print(f"  snapshot.save                  {save:8.2f} s")
    print(f"  snapshot.restore               {restore:8.2f} s")
    print(f"  ratio seed / restore           {seed / restore:8.1f}x")


if __name__ == "__main__":
    main()
