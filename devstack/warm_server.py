"""A warm service process: Django set up once, one fork per management command (Linux).

Run by the service's own interpreter from the service's folder (``python warm_server.py FD``);
it imports nothing of the runner. FD is one end of a ``SOCK_SEQPACKET`` socket pair. The server
sets Django up, says ``ready``, then for each request (JSON ``{"argv": [...], "env": {...}}``
with four file descriptors: stdin, stdout, stderr and a status pipe) forks a child that runs
``manage.py <argv>`` on those descriptors, and answers with the child's pid. The child writes
its exit code to the status pipe as it ends; a child killed by a signal writes nothing.

The server opens no database connection: every child starts from the same state, as a fresh
``manage.py`` would, and nothing holds a service's SQLite file between commands. It ends when
the runner closes its end of the socket (or dies).
"""

import atexit
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any


def run_child(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: run the command on the given descriptors and end the process."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the command may wait for processes of its own
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    status = fds[3]
    os.set_inheritable(status, False)  # a process the command starts must not hold its end open
    for fd in fds[:3]:
        os.close(fd)
    os.environ.update(request.get("env", {}))
    code = 0
    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *request["argv"]])
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # as an uncaught exception ends a process: traceback, exit 1
        traceback.print_exc()
        code = 1
    try:  # as a normal exit would: close the connections (SQLite checkpoints its WAL and removes
        # it), free what is left (a connection that failed half-way is closed as it is freed), run atexit
        from django.db import connections

        connections.close_all()
        gc.collect()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os.write(status, str(code).encode())
        os._exit(code)


def main() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    # What is loaded now stays out of every collection: a fork's garbage collector then does not
    # touch (and so copy) each page of the server's objects, which would cost tens of ms a command.
    gc.freeze()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the children
    channel.send(b"ready")
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(channel, 65536, 4)
        except (ConnectionError, OSError):
            return
        if not message:
            return  # the runner closed its end
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            channel.close()
            run_child(request, fds)
        for fd in fds:
            os.close(fd)
        channel.send(json.dumps({"pid": pid}).encode())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
