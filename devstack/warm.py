"""Warm service processes: one Django start per service and task, a fork per command.

A service's ``manage.py`` spends about 0.3 s setting Django up before its command does
anything, and a task runs several commands in each service (a fresh ``seed-all`` runs about
twenty). On Linux the runner starts one warm server per service (``warm_server.py``, run by the
service's own interpreter in its folder with the service's environment), and each command is a
fork of it, started in milliseconds, that runs ``manage.py <args>`` on pipes of the runner's.
The children behave as separate ``manage.py`` processes: their own stdin, stdout, stderr and
exit code, their own database connections, and the runner can kill them.

Elsewhere (Windows has no fork; macOS does not support fork after some of its system libraries
are loaded), with ``DEVSTACK_WARM=0``, or when a server cannot start, each command is a process
of its own, as before. A server that fails to start is not retried in the same task: the
command then runs as its own process and fails, if it does, with the service's own message.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from devstack import config

SERVER = Path(__file__).with_name("warm_server.py")
#: ``DEVSTACK_WARM=0`` (or ``false``, ``no``, ``off``) starts every service command as a process
#: of its own; unset or empty leaves warm servers on where the platform allows them.
SWITCH = "DEVSTACK_WARM"
#: Variables a command may have that its server does not: set in the child only.
PER_COMMAND = ("DEVSTACK_PROGRESS",)
#: Seconds a server may take to set Django up before its commands run as processes of their own.
STARTUP_TIMEOUT = 60.0
#: Servers kept at once (a process that works on several checkouts, such as a test run, ends the
#: oldest beyond this; a command already forked is not affected).
MAX_SERVERS = 8


def available(platform: str = sys.platform, environ: Mapping[str, str] = os.environ) -> bool:
    """Tell whether commands may be forked from warm servers on this platform and setting."""
    return (
        platform.startswith("linux")
        and config.as_bool(environ.get(SWITCH, "").strip() or "1")
        and hasattr(socket, "send_fds")
        and hasattr(os, "fork")
    )


class Forked:
    """A command forked by a warm server: the part of ``subprocess.Popen`` the runner uses."""

    def __init__(
        self, pid: int, stdin: IO[str] | None, stdout: IO[str], stderr: IO[str], status: int
    ) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._status = status

    def _read_status(self) -> None:
        data = b""
        while chunk := os.read(self._status, 64):
            data += chunk
        os.close(self._status)
        # Nothing written: the child ended without reaching its end (killed by a signal).
        self.returncode = int(data) if data.strip() else -int(signal.SIGKILL)

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._status], [], [], 0)[0]:
            self._read_status()
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self._read_status()
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)


class Server:
    """One warm server: a service's interpreter with Django set up, forking on request."""

    def __init__(self, python: str, cwd: Path, env: Mapping[str, str]) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.channel = mine
        self.lock = threading.Lock()
        try:
            self.proc = subprocess.Popen(
                [python, str(SERVER), str(theirs.fileno())],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,  # a server that fails falls back to a process per command
                pass_fds=[theirs.fileno()],
            )
        finally:
            theirs.close()
        mine.settimeout(STARTUP_TIMEOUT)
        try:
            ready = mine.recv(16)
        except OSError:
            ready = b""
        mine.settimeout(None)
        if ready != b"ready":
            self.close()
            raise OSError(f"the warm server of {cwd.name} did not start")

    def start(self, args: list[str], extra: Mapping[str, str], piped_stdin: bool) -> Forked:
        """Fork ``manage.py <args>`` with its own pipes; return its handle."""
        stdin_r, stdin_w = os.pipe() if piped_stdin else (os.open(os.devnull, os.O_RDONLY), -1)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        status_r, status_w = os.pipe()
        theirs = [stdin_r, out_w, err_w, status_w]
        try:
            with self.lock:
                message = json.dumps({"argv": args, "env": dict(extra)}).encode()
                socket.send_fds(self.channel, [message], theirs)
                answer = self.channel.recv(256)
        except OSError:
            for fd in (stdin_w, out_r, err_r, status_r):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        if not answer:
            for fd in (stdin_w, out_r, err_r, status_r):
                if fd >= 0:
                    os.close(fd)
            raise OSError("the warm server ended")
        return Forked(
            int(json.loads(answer)["pid"]),
            open(stdin_w, "w", encoding="utf-8") if stdin_w >= 0 else None,
            open(out_r, encoding="utf-8", errors="replace"),
            open(err_r, encoding="utf-8", errors="replace"),
            status_r,
        )

    def close(self) -> None:
        """End the server (it holds nothing: killing it loses nothing) and wait for it."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class _Slot:
    """The server of one service and environment: started once, by the first command that needs it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = False
        self.server: Server | None = None


_servers: dict[tuple[str, str, frozenset[tuple[str, str]]], _Slot] = {}
_servers_lock = threading.Lock()


def start(command: list[str], cwd: Path, env: Mapping[str, str], piped_stdin: bool) -> Forked | None:
    """Fork ``command`` (``[python, "manage.py", ...]``) from the warm server of its service.

    Return None when it cannot be (not available here, not a ``manage.py`` command, or its
    server would not start): the caller then starts a process of its own.
    """
    if len(command) < 2 or command[1] != "manage.py" or not available():
        return None
    base = {k: v for k, v in env.items() if k not in PER_COMMAND}
    extra = {k: v for k, v in env.items() if k in PER_COMMAND}
    key = (command[0], str(cwd), frozenset(base.items()))
    retired: list[Server] = []
    with _servers_lock:
        slot = _servers.setdefault(key, _Slot())
        while len(_servers) > MAX_SERVERS:
            oldest = _servers.pop(next(iter(_servers)))
            if oldest.server is not None:
                retired.append(oldest.server)
    for old in retired:
        with contextlib.suppress(OSError):
            old.close()
    with slot.lock:  # servers of other services start meanwhile
        if not slot.started:
            slot.started = True
            with contextlib.suppress(OSError):
                slot.server = Server(command[0], cwd, base)
        server = slot.server
    if server is None:
        return None
    try:
        return server.start(command[2:], extra, piped_stdin)
    except OSError:
        slot.server = None
        server.close()
        return None


def shutdown() -> None:
    """End every warm server (at the end of a task, on Ctrl-C, at exit)."""
    with _servers_lock:
        servers = [slot.server for slot in _servers.values() if slot.server is not None]
        _servers.clear()
    for server in servers:
        with contextlib.suppress(OSError):
            server.close()


atexit.register(shutdown)
