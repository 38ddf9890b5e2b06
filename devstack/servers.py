"""The services' dev servers (``inv up``): started, checked over HTTP, paused for writes, stopped.

A dev server is ``manage.py runserver 127.0.0.1:<port> --noreload`` in the service's
virtualenv, with the runner's environment. Detached ones are tracked like the workers (a PID
and start time file under ``.devstack/``, output in ``logs/<service>-server.log``), so the
helpers of :mod:`devstack.workers` start, find and stop them. Nothing here is POSIX-only:
processes are found, signalled and waited for through psutil.
"""

from __future__ import annotations

import atexit
import contextlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
from colorama import Fore, Style

from devstack import processes, rabbit, registry, retry, workers
from devstack.commands import child_env, python_of
from devstack.config import Settings
from devstack.errors import GuardError, StepError, UsageError
from devstack.holders import short_command

HOST = "127.0.0.1"
#: The administrator every auth seed creates (its password: ``inv password``).
ADMIN = "admin@example.com"
LOGIN_HINT = f"log in as {ADMIN} with the password from 'inv password'"


@dataclass(frozen=True)
class Server(workers.Worker):
    """A service's dev server: a worker of the runner that listens on ``port``."""

    port: int = 0

    def command(self, settings: Settings) -> list[str]:
        return [str(python_of(settings, self.service)), *self.args()]

    def args(self) -> list[str]:
        return ["manage.py", "runserver", f"{HOST}:{self.port}", "--noreload"]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @property
    def admin_url(self) -> str:
        return self.url + "admin/"

    @property
    def health_url(self) -> str:
        return self.url + "health/"


def server(settings: Settings, service: registry.Service) -> Server:
    return Server(f"{service.name}-server", service, (), settings.port(service))


def every(settings: Settings, services: Iterable[registry.Service] = registry.SERVICES) -> list[Server]:
    """The dev servers of ``services`` that have a port (a service without one has no dev server)."""
    return [server(settings, s) for s in services if (settings.ports or {}).get(s.name) or s.port]


def choose(settings: Settings, names: str | Sequence[str] | None) -> list[Server]:
    """The servers named (a comma-separated text or a list; repeated names once), else all."""
    words = names.split(",") if isinstance(names, str) else list(names or [])
    wanted = [w.strip() for part in words for w in part.split(",") if w.strip()]
    chosen = [registry.get(name) for name in dict.fromkeys(wanted)]  # UsageError names the known ones
    return every(settings, chosen or registry.SERVICES)


def everything(settings: Settings) -> list[workers.Worker]:
    """Every process ``inv up`` starts: the servers, the Celery workers and the relay."""
    return [*every(settings), *workers.consumers(), workers.relay()]


def running(settings: Settings, chosen: Server) -> psutil.Process | None:
    return workers.running(settings, chosen)


# -- ports -----------------------------------------------------------------------------------


def port_free(port: int, host: str = HOST) -> bool:
    """Tell whether a dev server could listen on ``host:port`` (nothing bound, nothing answering)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            # POSIX: ignore connections in TIME_WAIT, as runserver itself does; a listener still fails.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(0.5)
        return client.connect_ex((host, port)) != 0


def port_holder(port: int) -> str:
    """Name the process listening on ``port`` ("PID 12 (python manage.py runserver ...)") if allowed."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return "another process"
    pids = [
        c.pid
        for c in sorted(connections, key=lambda c: c.status != psutil.CONN_LISTEN)
        if c.laddr and c.laddr.port == port and c.pid
    ]
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            return f"PID {pid} ({short_command(proc.cmdline()) or proc.name()})"
    return "another process"


def taken_sentence(chosen: Server, holder: str) -> str:
    name = chosen.service.name
    return (
        f"Port {chosen.port} of the {name} dev server is already taken by {holder}; stop it, or give "
        f"{name} another port with devstack.ports.{name} in invoke.yaml (nothing was started)."
    )


def check_ports(chosen: Iterable[Server]) -> None:
    """Refuse (exit 3) in one sentence when a server's port is taken, naming who holds it."""
    for each in chosen:
        if not port_free(each.port):
            raise GuardError(taken_sentence(each, port_holder(each.port)))


# -- health ----------------------------------------------------------------------------------

_no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def health_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status ``url`` answers with, or None when nothing answers."""
    try:
        with _no_proxy.open(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_healthy(
    settings: Settings,
    started: Sequence[tuple[Server, psutil.Process]],
    timeout: float,
    any_answer: bool = False,
) -> None:
    """Wait until every server's ``/health/`` answers 200 (any answer with ``any_answer``)."""
    waiting = list(started)
    last: dict[str, int | None] = {}
    for _ in retry.attempts(timeout, cap=0.5):
        for each, proc in list(waiting):
            status = health_status(each.health_url)
            last[each.name] = status
            if status == 200 or (any_answer and status is not None):
                waiting.remove((each, proc))
            elif processes.gone(proc):
                raise StepError(workers.death_sentence(settings, each, proc, "during start-up"))
        if not waiting:
            return
    said = ", ".join(
        f"{s.health_url} ({'no answer' if last.get(s.name) is None else f'HTTP {last[s.name]}'})"
        for s, _ in waiting
    )
    logs = "\n".join(f"--- {s.name}\n{workers.tail(workers.log_file(settings, s))}" for s, _ in waiting)
    raise StepError(f"The dev servers did not answer 200 within {timeout:g} s: {said}.\n{logs}")


# -- detached --------------------------------------------------------------------------------


def start_missing(
    settings: Settings, chosen: Iterable[Server], say: Callable[[str], None]
) -> tuple[list[tuple[Server, psutil.Process]], list[tuple[Server, psutil.Process]]]:
    """Start the chosen servers that do not run; return (started, kept), each with its process."""
    started: list[tuple[Server, psutil.Process]] = []
    kept: list[tuple[Server, psutil.Process]] = []
    todo: list[Server] = []
    for each in chosen:
        proc = running(settings, each)
        if proc is None:
            todo.append(each)
        else:
            kept.append((each, proc))
    check_ports(todo)
    try:
        for each in todo:
            proc = workers.start(settings, each)
            started.append((each, proc))
            say(f"started {each.name} (PID {proc.pid}) on {each.url}")
    except BaseException:
        workers.stop_all(settings, [s for s, _ in started], settings.stop_grace)
        raise
    return started, kept


def stop(settings: Settings, chosen: Iterable[workers.Worker]) -> list[workers.Worker]:
    """Stop the chosen processes the runner started (PID and start time match); return those that ran."""
    return workers.stop_all(settings, chosen, settings.stop_grace)


# -- paused while the runner writes ----------------------------------------------------------

_paused: list[tuple[Settings, Server]] = []
_hooked: list[bool] = []


def pause(settings: Settings, service: registry.Service, say: Callable[[str], None]) -> bool:
    """Stop the runner's own dev server of ``service`` before a write; it starts again at exit.

    Return whether one was running. :func:`resume` starts it again (at the latest when the
    runner exits), so a seeding task leaves ``inv up``'s servers as it found them.
    """
    if not service.port and not (settings.ports or {}).get(service.name):
        return False
    each = server(settings, service)
    proc = running(settings, each)
    if proc is None:
        return False
    workers.stop(settings, each, settings.stop_grace)
    _paused.append((settings, each))
    if not _hooked:
        _hooked.append(True)
        atexit.register(resume)
    say(f"stopped {each.name} (PID {proc.pid}) while the runner writes its database; it starts again after")
    return True


def resume(say: Callable[[str], None] | None = None, timeout: float = 30.0) -> list[Server]:
    """Start again every server :func:`pause` stopped, wait until each answers; return them."""
    if say is None:
        from devstack.console import Console

        say = Console().info
    done: list[Server] = []
    while _paused:
        settings, each = _paused.pop(0)
        if running(settings, each) is not None:
            continue
        try:
            check_ports([each])
            proc = workers.start(settings, each)
            wait_healthy(settings, [(each, proc)], timeout, any_answer=True)
        except (StepError, GuardError, OSError) as exc:
            say(f"could not start {each.name} again: {exc}; 'inv up' starts it")
            continue
        say(f"started {each.name} again (PID {proc.pid}) on {each.url}")
        done.append(each)
    return done


# -- output ----------------------------------------------------------------------------------

COLORS = (Fore.CYAN, Fore.GREEN, Fore.MAGENTA, Fore.YELLOW, Fore.BLUE, Fore.RED)


def prefix(name: str, line: str, width: int, color: str | None = None) -> str:
    """One line of output, prefixed with its process name like honcho: ``name  | line``."""
    label = f"{name:<{width}} |"
    if color:
        label = f"{color}{label}{Style.RESET_ALL}"
    return f"{label} {line.rstrip(chr(10)).rstrip(chr(13))}"


def color_of(index: int, enabled: bool) -> str | None:
    return COLORS[index % len(COLORS)] if enabled else None


def log_sources(settings: Settings, name: str | None = None) -> list[tuple[str, Path]]:
    """The logs of ``inv up``'s processes: all, one process (``helpdesk-server``), or one service's."""
    chosen = everything(settings)
    if name:
        picked = [w for w in chosen if name in (w.name, w.service.name)]
        if not picked:
            known = ", ".join([*registry.NAMES, *(w.name for w in chosen)])
            raise UsageError(f"No logs of '{name}': choose one of {known}.")
        chosen = picked
    return [(w.name, workers.log_file(settings, w)) for w in chosen]


def print_logs(sources: Sequence[tuple[str, Path]], emit: Callable[[str], None], color: bool) -> int:
    """Print every line of each log, prefixed with its name; return how many logs exist."""
    width = max((len(n) for n, _ in sources), default=0)
    found = 0
    for index, (name, path) in enumerate(sources):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found += 1
        for line in text.splitlines():
            emit(prefix(name, line, width, color_of(index, color)))
    return found


def follow(
    sources: Sequence[tuple[str, Path]],
    emit: Callable[[str], None],
    color: bool,
    keep_going: Callable[[], bool] = lambda: True,
    poll: float = 0.2,
    from_start: bool = False,
) -> None:
    """Print lines added to the logs, prefixed, until ``keep_going`` says no (or Ctrl-C).

    Plain polling of the files: it works on every platform; a log that is truncated or
    replaced (a new run) is read again from its start.
    """
    width = max((len(n) for n, _ in sources), default=0)
    offsets = {path: (0 if from_start or not path.exists() else path.stat().st_size) for _, path in sources}
    partial = {path: "" for _, path in sources}
    while True:
        for index, (name, path) in enumerate(sources):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size < offsets[path]:
                offsets[path], partial[path] = 0, ""
            if size == offsets[path]:
                continue
            with open(path, "rb") as handle:
                handle.seek(offsets[path])
                chunk = handle.read(size - offsets[path])
            offsets[path] += len(chunk)
            text = partial[path] + chunk.decode("utf-8", errors="replace")
            *lines, partial[path] = text.split("\n")
            for line in lines:
                emit(prefix(name, line, width, color_of(index, color)))
        if not keep_going():
            return
        time.sleep(poll)


# -- attached (--foreground) -----------------------------------------------------------------


def pump(stream: IO[str], name: str, width: int, color: str | None, emit: Callable[[str], None]) -> None:
    for line in stream:
        emit(prefix(name, line, width, color))


def run_foreground(
    settings: Settings,
    chosen: Sequence[workers.Worker],
    emit: Callable[[str], None],
    say: Callable[[str], None],
    color: bool,
    timeout: float,
    ready: Callable[[], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run ``chosen`` attached, their output prefixed; stop them all on Ctrl-C or when one ends.

    Return 0 after Ctrl-C (or ``should_stop``), 1 when a process ended on its own.
    """
    queues = [q for w in chosen for q in w.queues]
    if queues:
        workers.declare_queues(settings, queues, say)
    info = (
        workers.queue_info(rabbit.parse(settings.broker_url), map(settings.queue, queues)) if queues else {}
    )
    baseline = {q: (i.consumers if i else 0) for q, i in info.items()}
    width = max(len(w.name) for w in chosen)
    children: list[tuple[workers.Worker, subprocess.Popen[str], psutil.Process]] = []
    threads: list[threading.Thread] = []
    code = 0
    try:
        for index, each in enumerate(chosen):
            child = subprocess.Popen(
                each.command(settings),
                cwd=each.service.folder(settings.root),
                env=child_env(settings, each.service),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
            children.append((each, child, psutil.Process(child.pid)))
            assert child.stdout is not None
            thread = threading.Thread(
                target=pump, args=(child.stdout, each.name, width, color_of(index, color), emit), daemon=True
            )
            thread.start()
            threads.append(thread)
        web = [(w, p) for w, _, p in children if isinstance(w, Server)]
        wait_healthy(settings, web, timeout)
        consuming = {w.name: p for w, _, p in children if not isinstance(w, Server)}
        workers.wait_consuming(settings, consuming, baseline, timeout)
        ready()
        while not should_stop():
            ended = [(w, c) for w, c, _ in children if c.poll() is not None]
            if ended:
                each, child = ended[0]
                say(f"{each.name} exited (exit code {child.returncode}); stopping the others")
                code = 1
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        say("Ctrl-C: stopping every process")
    finally:
        left = processes.stop([p for _, c, p in children if c.poll() is None], settings.stop_grace)
        for _, child, _ in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)
        for thread in threads:
            thread.join(timeout=2)
        if left:
            say("still running: " + ", ".join(f"PID {p.pid}" for p in left))
        elif children:
            say("stopped " + ", ".join(w.name for w, _, _ in children))
    return code
