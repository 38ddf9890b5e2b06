"""Benchmark the helpdesk seed against the raw limit: inserting the same rows into the same schema.

In a temporary folder, for each ticket count: migrate an empty helpdesk database with the
service's virtualenv, copy the empty schema, time ``manage.py seed --employees 9999 --tickets N
--json`` (wall time of the whole process and its peak RSS), then time the raw limit: the seeded
rows read back (``SELECT * FROM helpdesk_employee`` and ``helpdesk_ticket``) and inserted into the
empty copy with one ``sqlite3`` ``executemany`` per table (PostgreSQL: psycopg ``COPY ... FROM
STDIN``), in one transaction. The raw step runs in the service's interpreter too (same SQLite
library, psycopg). Prints one line per figure, the ratios at the end::

    python benchmarks/seed_raw.py                   # SQLite, 100,000 tickets
    python benchmarks/seed_raw.py --big             # and 1,000,000 tickets
    python benchmarks/seed_raw.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

``--postgres`` names a server (any database on it): the benchmark creates and drops its own
databases there. ``--service``/``--python`` run another checkout's helpdesk (e.g. a ``git
worktree`` of an older commit) with a given interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from devstack.venvs import venv_python

REPO = Path(__file__).resolve().parents[1]
SERVICE = REPO / "services" / "helpdesk"
TABLES = ("helpdesk_employee", "helpdesk_ticket")
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL")


@dataclass
class Figures:
    """Hold what one run measured (seconds, MiB)."""

    label: str
    seed_seconds: float
    seed_cpu: float
    seed_peak_mib: float
    fixed_seconds: float
    fixed_cpu: float
    raw_seconds: float
    raw_cpu: float
    rows: int

    def best(self, other: Figures) -> Figures:
        """Return the best of each figure of two runs: the smallest times, the largest peak."""
        return Figures(
            self.label,
            min(self.seed_seconds, other.seed_seconds),
            min(self.seed_cpu, other.seed_cpu),
            max(self.seed_peak_mib, other.seed_peak_mib),
            min(self.fixed_seconds, other.fixed_seconds),
            min(self.fixed_cpu, other.fixed_cpu),
            min(self.raw_seconds, other.raw_seconds),
            min(self.raw_cpu, other.raw_cpu),
            self.rows,
        )


def run_checked(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command; return its stdout, or exit with its output when it fails."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def timed_child(
    command: list[str], cwd: Path, env: dict[str, str], folder: Path
) -> tuple[float, float, float, str]:
    """Run a command; return its wall seconds, CPU seconds (user + system), peak RSS in MiB, stdout."""
    out_path, err_path = folder / "seed.out", folder / "seed.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{out_path.read_text()}\n{err_path.read_text()}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out_path.read_text()


def service_env(database_url: str, folder: Path) -> dict[str, str]:
    """Return the environment of the service commands: the database and a throwaway password."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=database_url,
        SEED_USER_PASSWORD="benchmark-password",
        SEED_PASSWORD_FILE=str(folder / "seed-password"),
    )
    return env


def seed_command(python: str, employees: int, tickets: int) -> list[str]:
    """Return the seed command line."""
    return [python, "manage.py", "seed", "--employees", str(employees), "--tickets", str(tickets), "--json"]


def raw_command(python: str, vendor: str, source: str, target: str) -> list[str]:
    """Return the command that times the raw copy in the service's interpreter."""
    return [python, str(Path(__file__).resolve()), "--raw-copy", vendor, source, target]


def read_raw_result(stdout: str) -> tuple[float, float, int]:
    """Return (wall seconds, CPU seconds, rows) from the raw copy's JSON line."""
    result = json.loads(stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["cpu"]), int(result["rows"])


def check_report(stdout: str, tickets: int) -> None:
    """Exit when the seed did not leave ``tickets`` tickets."""
    report = json.loads(stdout.strip().splitlines()[-1])
    if report["counts"]["Ticket"] != tickets:
        sys.exit(f"The seed left {report['counts']['Ticket']} tickets, not {tickets}.")


def bench_sqlite(python: str, service: Path, employees: int, tickets: int, folder: Path) -> Figures:
    """Migrate, copy the empty schema, seed, then time the raw executemany of the seeded rows.

    The fixed part is the same seed with ``--tickets 0`` on another copy of the empty schema.
    """
    seeded = folder / f"seed-{tickets}.sqlite3"
    empty, fixed = folder / f"raw-{tickets}.sqlite3", folder / f"fixed-{tickets}.sqlite3"
    env = service_env(f"sqlite:///{seeded}", folder)
    run_checked([python, "manage.py", "migrate", "--no-input"], service, env)
    for copy in (empty, fixed):
        with sqlite3.connect(seeded) as source, sqlite3.connect(copy) as target:
            source.backup(target)
    fixed_env = service_env(f"sqlite:///{fixed}", folder)
    fixed_seconds, fixed_cpu, _, _ = timed_child(
        seed_command(python, employees, 0), service, fixed_env, folder
    )
    seconds, cpu, peak, stdout = timed_child(seed_command(python, employees, tickets), service, env, folder)
    check_report(stdout, tickets)
    raw_seconds, raw_cpu, rows = read_raw_result(
        run_checked(raw_command(python, "sqlite", str(seeded), str(empty)), service, env)
    )
    for path in folder.glob(f"*-{tickets}.sqlite3*"):
        path.unlink()
    return Figures(
        f"sqlite, {tickets:,} tickets",
        seconds,
        cpu,
        peak,
        fixed_seconds,
        fixed_cpu,
        raw_seconds,
        raw_cpu,
        rows,
    )


def database_url(server: str, name: str) -> str:
    """Return the server URL with its database replaced by ``name``."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def bench_postgres(
    python: str, service: Path, server: str, employees: int, tickets: int, folder: Path
) -> Figures:
    """Same as :func:`bench_sqlite` on PostgreSQL (its own databases), COPY as the raw limit."""
    prefix = f"perf_seed_raw_{uuid.uuid4().hex[:8]}_{tickets}"
    seeded, empty, fixed = f"{prefix}_seed", f"{prefix}_raw", f"{prefix}_fixed"
    env = service_env(database_url(server, seeded), folder)
    admin = [python, str(Path(__file__).resolve()), "--pg-admin", server]
    run_checked([*admin, f'CREATE DATABASE "{seeded}"'], service, env)
    try:
        run_checked([python, "manage.py", "migrate", "--no-input"], service, env)
        for copy in (empty, fixed):
            run_checked([*admin, f'CREATE DATABASE "{copy}" TEMPLATE "{seeded}"'], service, env)
        fixed_env = service_env(database_url(server, fixed), folder)
        fixed_seconds, fixed_cpu, _, _ = timed_child(
            seed_command(python, employees, 0), service, fixed_env, folder
        )
        seconds, cpu, peak, stdout = timed_child(
            seed_command(python, employees, tickets), service, env, folder
        )
        check_report(stdout, tickets)
        command = raw_command(python, "postgresql", database_url(server, seeded), database_url(server, empty))
        raw_seconds, raw_cpu, rows = read_raw_result(run_checked(command, service, env))
    finally:
        for name in (seeded, empty, fixed):
            run_checked([*admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], service, env)
    return Figures(
        f"postgresql, {tickets:,} tickets",
        *(seconds, cpu, peak, fixed_seconds, fixed_cpu, raw_seconds, raw_cpu, rows),
    )


def raw_copy_sqlite(source: str, target: str) -> tuple[float, float, int]:
    """Insert the source's rows into the target's empty tables with executemany; time the writes."""
    with sqlite3.connect(source) as connection:
        data = {table: connection.execute(f"SELECT * FROM {table}").fetchall() for table in TABLES}
    connection = sqlite3.connect(target, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        connection.execute(pragma)
    started, cpu = time.perf_counter(), time.process_time()
    connection.execute("BEGIN IMMEDIATE")
    for table, rows in data.items():
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    connection.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    connection.close()
    return seconds, cpu, sum(len(rows) for rows in data.values())


def raw_copy_postgres(source: str, target: str) -> tuple[float, float, int]:
    """Insert the source's rows into the target's empty tables with COPY FROM STDIN; time the writes."""
    import psycopg

    data: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    with psycopg.connect(source) as connection, connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            data[table] = ([column.name for column in cursor.description or ()], cursor.fetchall())
    with psycopg.connect(target) as connection:
        started, cpu = time.perf_counter(), time.process_time()
        with connection.transaction(), connection.cursor() as cursor:
            for table, (columns, rows) in data.items():
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return seconds, cpu, sum(len(rows) for _, rows in data.values())


def pg_admin(server: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on the server."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(statement)  # type: ignore[arg-type]


def report(figures: list[Figures]) -> None:
    """Print one line per figure, then the ratios.

    CPU times are the client process's: for SQLite they include the database's work, for
    PostgreSQL the server's work is not in them (compare wall times there). The fixed part
    (startup, password hash, the employees) is the same seed with ``--tickets 0``.
    """
    for item in figures:
        raw = "executemany" if item.label.startswith("sqlite") else "COPY"
        lines = [
            ("manage.py seed --json, wall time", f"{item.seed_seconds:8.2f} s"),
            ("manage.py seed --json, CPU time (user + system)", f"{item.seed_cpu:8.2f} s"),
            ("manage.py seed --json, peak RSS", f"{item.seed_peak_mib:8.1f} MiB"),
            ("fixed part (same seed, --tickets 0), wall time", f"{item.fixed_seconds:8.2f} s"),
            ("fixed part (same seed, --tickets 0), CPU time", f"{item.fixed_cpu:8.2f} s"),
            (f"raw {raw} of the same {item.rows:,} rows, wall time", f"{item.raw_seconds:8.2f} s"),
            (f"raw {raw} of the same {item.rows:,} rows, client CPU time", f"{item.raw_cpu:8.2f} s"),
        ]
        for name, value in lines:
            print(f"{item.label + ':':<31} {name:<58} {value}")
    for item in figures:
        line = f"ratio {item.label}: seed / raw wall time = {item.seed_seconds / item.raw_seconds:.2f}x"
        if item.label.startswith("sqlite"):
            line += f", CPU time = {item.seed_cpu / item.raw_cpu:.2f}x"
        marginal = (item.seed_seconds - item.fixed_seconds) / item.raw_seconds
        line += f"; without the fixed part, wall time = {marginal:.2f}x"
        print(line)


def main() -> None:
    """Parse the options and run the benchmarks (or one internal raw step)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets of the base run (100,000)")
    parser.add_argument("--big", action="store_true", help="also seed 1,000,000 tickets")
    parser.add_argument(
        "--curve", action="store_true", help="the growth curve: 1k, 10k, 100k and 1M tickets, with rows/s"
    )
    parser.add_argument("--employees", type=int, default=9_999, help="employees to seed (9,999)")
    parser.add_argument("--postgres", metavar="URL", help="also benchmark on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite (with --postgres)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure; the best is kept (1)")
    parser.add_argument("--service", type=Path, default=SERVICE, help="helpdesk service folder")
    parser.add_argument("--python", help="interpreter with the service's packages (its .venv)")
    parser.add_argument("--raw-copy", nargs=3, metavar=("VENDOR", "SOURCE", "TARGET"), help=argparse.SUPPRESS)
    parser.add_argument("--pg-admin", nargs=2, metavar=("SERVER", "SQL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_copy:
        vendor, source, target = args.raw_copy
        copy = raw_copy_sqlite if vendor == "sqlite" else raw_copy_postgres
        seconds, cpu, rows = copy(source, target)
        print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": rows}))
        return
    if args.pg_admin:
        pg_admin(*args.pg_admin)
        return
    service = args.service.resolve()
    python = args.python or str(venv_python(SERVICE / ".venv"))
    counts = [args.tickets, *([1_000_000] if args.big else [])]
    if args.curve:
        counts = [1_000, 10_000, 100_000, 1_000_000]
    figures: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="seed-raw-") as tmp:
        folder = Path(tmp)
        for tickets in counts:
            runs: list[Callable[[], Figures]] = []
            if not args.no_sqlite:
                runs.append(partial(bench_sqlite, python, service, args.employees, tickets, folder))
            if args.postgres:
                runs.append(
                    partial(bench_postgres, python, service, args.postgres, args.employees, tickets, folder)
                )
            for run in runs:
                best = run()
                for _ in range(args.repeat - 1):
                    best = best.best(run())
                figures.append(best)
    report(figures)
    if args.curve:
        growth(figures)


def growth(figures: list[Figures]) -> None:
    """The growth curve: per run, the seed's time, rows per second and peak memory (linear is flat)."""
    print(f"{'growth':<31} {'seed wall time':>14} {'rows/s':>10} {'peak RSS':>10}  rows")
    for item in figures:
        rate = item.rows / item.seed_seconds if item.seed_seconds else 0.0
        print(
            f"{item.label + ':':<31} {item.seed_seconds:>12.2f} s {rate:>10,.0f} "
            f"{item.seed_peak_mib:>6.1f} MiB  {item.rows:,}"
        )


if __name__ == "__main__":
    main()
