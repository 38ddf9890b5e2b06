"""Guards before writing: processes holding a SQLite file, remote or production data.

Finding holders lives in :mod:`devstack.holders`, stopping processes in
:mod:`devstack.processes` and the run lock in :mod:`devstack.lock`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

import psutil

from devstack import processes
from devstack.config import Settings
from devstack.errors import GuardError, UsageError
from devstack.holders import Holder, find_holders, sqlite_path
from devstack.registry import Service
from devstack.urls import is_local, mask_url


def stop(holders: list[Holder], grace: float) -> list[Holder]:
    """End holders gracefully, killing those still alive after ``grace`` seconds; return survivors."""
    procs = []
    for holder in holders:
        try:
            procs.append(psutil.Process(holder.pid))
        except psutil.NoSuchProcess:
            continue
    left = {proc.pid for proc in processes.stop(procs, grace)}
    return [h for h in holders if h.pid in left]


def check_target(settings: Settings, service: Service, environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to write to a database that is not this machine's dev data."""
    if settings.allow_remote:
        return
    url = settings.database_url(service.name)
    try:
        local = not url or is_local(url, environ)
    except ValueError as exc:
        raise UsageError(
            f"{service.name}: the database URL {mask_url(url)} is malformed ({exc}); fix it."
        ) from None
    if not local:
        raise GuardError(
            f"{service.name}: its database {mask_url(url)} may not be on this machine (its host, "
            "?host=/?hostaddr=, PGHOST or a service definition); rerun with --allow-remote if you "
            "really mean to write to it (prerequisite steps take it from INVOKE_DEVSTACK_ALLOW_REMOTE=1)."
        )
    if environ.get("DJANGO_ENV", "").strip().lower() in {"prod", "production"}:
        raise GuardError(
            f"{service.name}: DJANGO_ENV says production; unset it or rerun with --allow-remote "
            "(prerequisite steps take it from INVOKE_DEVSTACK_ALLOW_REMOTE=1)."
        )


def check_writable(
    settings: Settings,
    service: Service,
    stop_servers: bool = False,
    report: Callable[[str], None] | None = None,
    exclude: Iterable[int] = (),
) -> None:
    """Run every guard before writing to ``service``'s database.

    ``exclude`` names processes allowed to hold the file: the runner's own workers.
    """
    check_target(settings, service)
    database = sqlite_path(settings, service)
    if database is None or not database.exists():
        return
    holders = find_holders(database, service.folder(settings.root), exclude)
    if not holders:
        return
    if not stop_servers:
        first = holders[0]
        others = f" and {len(holders) - 1} more" if len(holders) > 1 else ""
        raise GuardError(
            f"{service.name}: PID {first.pid} ({first.cmdline}) {first.why}{others}; "
            "stop it before writing, or rerun with --stop-servers "
            "(prerequisite steps take it from INVOKE_DEVSTACK_STOP_SERVERS=1)."
        )
    left = stop(holders, settings.stop_grace)
    if report:
        for holder in holders:
            report(f"stopped PID {holder.pid} ({holder.cmdline}): it {holder.why}")
    if left:
        raise GuardError(f"{service.name}: PID {left[0].pid} did not stop; end it yourself and rerun.")
