from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devstack import rabbit, retry, workers
from devstack.config import Settings
from devstack.errors import StepError
from devstack.venvs import venv_python


@pytest.fixture
def relay_settings(settings: Settings) -> Settings:
    """A checkout whose auth 'relay' is a script that runs until it is stopped."""
    folder = settings.root / "services" / "auth"
    python = venv_python(folder / ".venv")
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    (folder / "manage.py").write_text(
        "import sys, time\nprint('relay', sys.argv[1:], flush=True)\ntime.sleep(120)\n", encoding="utf-8"
    )
    return settings


def test_detach_options_per_platform() -> None:
    assert workers.detach_options(windows=False) == {"start_new_session": True}
    flags = workers.detach_options(windows=True)["creationflags"]
    assert flags & 0x200 and flags & 0x8  # CREATE_NEW_PROCESS_GROUP | DETACHED_PROCESS


def test_worker_commands() -> None:
    worker = workers.consumers()[0]
    assert worker.name == "workflow-worker"
    assert worker.queues == ("tts.role.sync", "tts.user_system_role.sync")
    assert workers.relay().queues == ()


def test_worker_commands_consume_the_namespaced_queues(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    monkeypatch.setattr(workers, "python_of", lambda settings, service: Path("python"))
    command = workers.consumers()[1].command(replace(settings, project="clone-b"))
    assert command[command.index("--queues") + 1] == "clone-b.hdts.user.sync,clone-b.hdts.employee.sync"
    assert command[command.index("--hostname") + 1] == "helpdesk.clone-b@%h"
    bare = workers.consumers()[1].command(replace(settings, project=""))
    assert bare[bare.index("--queues") + 1] == "hdts.user.sync,hdts.employee.sync"
    assert bare[bare.index("--hostname") + 1] == "helpdesk@%h"


def test_start_records_pid_and_stop_ends_only_that_process(relay_settings: Settings) -> None:
    relay = workers.relay()
    proc = workers.start(relay_settings, relay)
    try:
        record = json.loads(workers.pid_file(relay_settings, relay).read_text(encoding="utf-8"))
        assert record["pid"] == proc.pid
        assert workers.running(relay_settings, relay) == proc
        assert proc.pid in workers.own_pids(relay_settings)
        log = workers.log_file(relay_settings, relay)
        wrote = retry.wait_until(lambda: "relay ['relay_events', '--loop']" in log.read_text(), 10)
        assert wrote, "the relay never wrote its log"
        assert workers.stop(relay_settings, relay, grace=5) is True
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
        assert not workers.pid_file(relay_settings, relay).exists()
        assert workers.stop(relay_settings, relay, grace=5) is False
    finally:
        if proc.is_running():
            proc.kill()


def test_stale_pid_file_is_dropped_and_never_kills_a_stranger(relay_settings: Settings) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        relay = workers.relay()
        path = workers.pid_file(relay_settings, relay)
        path.parent.mkdir(parents=True)
        # Same PID, other start time: the PID was reused by a process the runner did not start.
        path.write_text(json.dumps({"pid": stranger.pid, "created": 1.0}), encoding="utf-8")
        assert workers.running(relay_settings, relay) is None
        assert not path.exists()
        assert workers.stop(relay_settings, relay, grace=1) is False
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_recorded_reads_a_pid_file_without_touching_it(relay_settings: Settings) -> None:
    relay = workers.relay()
    assert workers.recorded(relay_settings, relay) == (None, False)  # no file: nothing recorded
    path = workers.pid_file(relay_settings, relay)
    path.parent.mkdir(parents=True)
    me = psutil.Process()
    path.write_text(json.dumps({"pid": me.pid, "created": me.create_time()}), encoding="utf-8")
    assert workers.recorded(relay_settings, relay) == (me, False)
    path.write_text(json.dumps({"pid": me.pid, "created": 1.0}), encoding="utf-8")
    assert workers.recorded(relay_settings, relay) == (None, True)  # stale, and still there
    path.write_text("not json", encoding="utf-8")
    assert workers.recorded(relay_settings, relay) == (None, True)
    assert path.exists()


def test_tail_of_a_missing_log() -> None:
    assert workers.tail(Path(os.devnull).with_name("no-such-log")) == "(no log)"


def test_wait_consuming_names_a_worker_that_died_at_start(relay_settings: Settings) -> None:
    relay = workers.relay()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    proc = psutil.Process(child.pid)
    child.wait()
    workers.log_file(relay_settings, relay).parent.mkdir(parents=True)
    workers.log_file(relay_settings, relay).write_text("Traceback: boom\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(StepError) as caught:
        workers.wait_consuming(relay_settings, {relay.name: proc}, {}, timeout=30)
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(f"auth-relay (PID {proc.pid}) exited during start-up; its log (")
    assert str(caught.value).endswith("auth-relay.log) ends with:\nTraceback: boom")


def test_wait_consuming_has_nothing_to_wait_for_without_queues(relay_settings: Settings) -> None:
    relay = workers.relay()
    proc = workers.start(relay_settings, relay)
    try:
        workers.wait_consuming(relay_settings, {relay.name: proc}, {}, timeout=0)  # no broker needed
    finally:
        assert workers.stop(relay_settings, relay, grace=5) is True


def test_exit_status_of_own_children() -> None:
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc = psutil.Process(done.pid)
    assert retry.wait_until(lambda: workers.gone(proc), 10)
    assert workers.exit_status(proc) == "exit code 3"
    if sys.platform != "win32":
        killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        proc = psutil.Process(killed.pid)
        proc.kill()
        assert retry.wait_until(lambda: workers.gone(proc), 10)
        assert workers.exit_status(proc) == "killed by SIGKILL"


def test_death_sentence_names_the_worker_its_end_and_its_log(settings: Settings) -> None:
    worker = workers.consumers()[1]
    log = workers.log_file(settings, worker)
    log.parent.mkdir(parents=True)
    log.write_text("".join(f"line {n}\n" for n in range(40)), encoding="utf-8")
    alive = psutil.Process(os.getpid())  # how it ended is unknown: the sentence leaves it out
    sentence = workers.death_sentence(settings, worker, alive, "while waiting")
    assert sentence.startswith(
        f"helpdesk-worker (PID {os.getpid()}) exited while waiting; its log ({log}) ends"
    )
    assert sentence.endswith("\n".join(f"line {n}" for n in range(25, 40)))


def test_dead_letter_queue_names_and_arguments() -> None:
    assert workers.dead_queue("hdts.user.sync") == "hdts.user.sync.dead"
    assert workers.queue_arguments("hdts.user.sync") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "hdts.user.sync.dead",
    }


def test_rabbitmqctl_hint_names_the_virtual_host() -> None:
    default = rabbit.parse("amqp://guest:guest@localhost:5672//")
    other = rabbit.parse("amqp://guest:guest@localhost:5672/dev")
    assert workers.rabbitmqctl(default, "delete_queue", "q") == "rabbitmqctl delete_queue q"
    assert workers.rabbitmqctl(other, "delete_queue", "q") == "rabbitmqctl delete_queue -p dev q"


def test_an_unreachable_broker_mid_step_is_exit_code_4_with_what_to_do(settings: Settings) -> None:
    from dataclasses import replace

    from devstack.errors import BrokerError, StepError

    closed = replace(settings, broker_url="amqp://guest:s3cret@127.0.0.1:9/none")
    with pytest.raises(StepError) as caught:  # what the steps that carry on without it catch
        workers.queue_info(rabbit.parse(closed.broker_url), ["q"], timeout=1)
    assert isinstance(caught.value, BrokerError) and caught.value.code == 4
    assert "start it, or fix broker_url ('inv check-rabbit'" in str(caught.value)
    assert "s3cret" not in str(caught.value)
