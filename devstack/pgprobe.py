"""Connect to a PostgreSQL database read-only and report the role and server, as JSON.

``inv doctor`` runs this file with a service's virtualenv (``python -I -B pgprobe.py``: no
folder of the checkout on ``sys.path``, no bytecode written), which has psycopg and
dj-database-url, or imports it when the runner itself has psycopg. It imports nothing of the
runner: the URL comes in the ``DEVSTACK_PROBE_URL`` variable (never on the command line, where
other users could read its password), the report goes to stdout. Nothing is written: one
connection and one ``SELECT`` (when the database is missing, the same again on a maintenance
database, to learn whether the role exists and may create databases).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

URL_VARIABLE = "DEVSTACK_PROBE_URL"
#: Options of Django's PostgreSQL backend that are not libpq's.
DJANGO_ONLY = frozenset({"pool", "server_side_binding", "assume_role", "isolation_level"})
#: Databases every cluster has, to tell a missing database from a refused role.
MAINTENANCE = ("postgres", "template1")


def connect_args(url: str) -> dict[str, Any]:
    """Connection keywords for ``psycopg.connect``, read from ``url`` as the services read it.

    With dj-database-url (the services' parser) the URL gives name, user, password, host, port
    and options as Django passes them; without it, libpq reads the URL itself.
    """
    try:
        import dj_database_url
    except ImportError:
        _, sep, rest = url.partition("://")
        return {"conninfo": f"postgresql://{rest}" if sep else url}
    parsed = dj_database_url.parse(url)
    args: dict[str, Any] = {
        "dbname": parsed.get("NAME") or None,
        "user": parsed.get("USER") or None,
        "password": parsed.get("PASSWORD") or None,
        "host": parsed.get("HOST") or None,
        "port": str(parsed["PORT"]) if parsed.get("PORT") else None,
    }
    options = {k: v for k, v in dict(parsed.get("OPTIONS") or {}).items() if k not in DJANGO_ONLY}
    return {**{k: v for k, v in args.items() if v is not None}, **options}


def probe(url: str, timeout: int = 5) -> dict[str, Any]:
    """Connect to ``url``; say who connected to what, or why it failed (the driver's message).

    When the database is missing, the maintenance databases are tried with the same role, so
    the report can say whether the role exists, its password works and it may create databases.
    """
    try:
        import psycopg
    except ImportError as exc:
        return {"ok": False, "error": f"psycopg is not installed ({exc})", "driver": False}
    try:
        args = connect_args(url)
    except Exception as exc:  # dj-database-url refuses it: say so, as the services would fail
        return {"ok": False, "error": f"the URL does not parse ({type(exc).__name__}: {exc})"}
    query = (
        "SELECT current_user, current_database(), current_setting('server_version'), "
        "r.rolsuper, r.rolcreatedb FROM pg_roles r WHERE r.rolname = current_user"
    )

    def who(connection: Any) -> dict[str, Any]:
        row = connection.execute(query).fetchone()
        if row is None:  # the role cannot see itself in pg_roles: name it only
            row = (connection.info.user, connection.info.dbname, "", None, None)
        keys = ("role", "database", "server", "superuser", "createdb")
        return dict(zip(keys, row, strict=True))

    try:
        with psycopg.connect(connect_timeout=timeout, autocommit=True, **args) as connection:
            return {"ok": True, **who(connection)}
    except psycopg.Error as exc:
        report: dict[str, Any] = {"ok": False, "error": str(exc).strip(), "sqlstate": exc.sqlstate}
    if "does not exist" in report["error"] and "database" in report["error"]:
        for name in MAINTENANCE:
            try:  # dbname= overrides the database of a conninfo URL too
                with psycopg.connect(
                    connect_timeout=timeout, autocommit=True, **{**args, "dbname": name}
                ) as connection:
                    report["maintenance"] = {"ok": True, **who(connection)}
                    break
            except psycopg.Error as exc:
                report["maintenance"] = {"ok": False, "error": str(exc).strip()}
    return report


#: The fast path's question (``fastpath``): a JSON mapping of names to URLs instead of one URL.
MARKS_VARIABLE = "DEVSTACK_PROBE_MARKS"
#: What changes with every write: the database's identity and the cluster's next transaction id
#: (every transaction that writes, in any database of the server, takes one; reads take none).
MARK_QUERY = (
    "SELECT current_database(), (SELECT oid FROM pg_database WHERE datname = current_database()), "
    "pg_snapshot_xmax(pg_current_snapshot())::text"
)


def marks(urls: dict[str, str], timeout: int = 5) -> dict[str, Any]:
    """Each database's identity and its server's next transaction id, or None when it fails."""
    try:
        import psycopg
    except ImportError:
        return dict.fromkeys(urls)
    found: dict[str, Any] = {}
    for name, url in urls.items():
        try:
            with psycopg.connect(connect_timeout=timeout, autocommit=True, **connect_args(url)) as db:
                row = db.execute(MARK_QUERY).fetchone()
                found[name] = [str(value) for value in row] if row else None
        except Exception:  # any failure: no mark, the stack is read the long way
            found[name] = None
    return found


def main() -> int:
    if MARKS_VARIABLE in os.environ:
        json.dump(marks(json.loads(os.environ[MARKS_VARIABLE])), sys.stdout)
        sys.stdout.write("\n")
        return 0
    url = os.environ.get(URL_VARIABLE, "")
    json.dump(probe(url), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
