"""Pieces of ``inv up``: command lines, ports, the port-holder sentence, log prefixing and following."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from colorama import Fore, Style

from devstack import config, registry, servers
from devstack.config import Settings
from devstack.errors import GuardError, UsageError


def test_registry_ports_and_config_override(settings: Settings) -> None:
    assert {s.name: s.port for s in registry.SERVICES} == {"helpdesk": 8000, "workflow": 8002, "auth": 8003}
    assert registry.Service("billing", rows=()).port == 0  # rows without a port still construct
    chosen = Settings(root=settings.root, ports={"auth": 9100})
    assert chosen.port(registry.get("auth")) == 9100
    assert chosen.port(registry.get("helpdesk")) == 8000
    with pytest.raises(UsageError, match=r"devstack\.ports\.billing"):
        chosen.port(registry.Service("billing", rows=()))


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ({"auth": "x"}, "devstack.ports.auth must be a port number from 1 to 65535"),
        ({"auth": 70000}, "devstack.ports.auth must be a port number"),
        ({"auth": True}, "devstack.ports.auth must be a port number"),
        ({"helpdsk": 1}, "unknown service helpdsk; did you mean helpdesk"),
        (5, "devstack.ports must map service names to ports"),
    ],
)
def test_bad_ports_are_named(ports: object, message: str) -> None:
    problems = config.validate({"ports": ports})
    assert len(problems) == 1 and message in problems[0]


def test_ports_from_config(tmp_path: Path) -> None:
    assert config.validate({"ports": {"auth": "9001", "helpdesk": None}}) == []
    assert config.from_config({"ports": {"auth": "9001"}}, tmp_path).ports == {"auth": 9001}


def test_command_line_and_urls(settings: Settings) -> None:
    each = servers.server(Settings(root=settings.root, ports={"helpdesk": 9200}), registry.get("helpdesk"))
    assert each.name == "helpdesk-server"
    assert each.args() == ["manage.py", "runserver", "127.0.0.1:9200", "--noreload"]
    assert each.url == "http://127.0.0.1:9200/"
    assert each.admin_url == "http://127.0.0.1:9200/admin/"
    assert each.health_url == "http://127.0.0.1:9200/health/"


def test_choose_takes_commas_and_repeats(settings: Settings) -> None:
    assert [s.service.name for s in servers.choose(settings, None)] == list(registry.NAMES)
    assert [s.service.name for s in servers.choose(settings, "auth, helpdesk,auth")] == ["auth", "helpdesk"]
    assert [s.service.name for s in servers.choose(settings, ["workflow"])] == ["workflow"]
    with pytest.raises(UsageError, match="Unknown service 'billing'"):
        servers.choose(settings, "billing")


def test_a_taken_port_is_one_sentence_naming_its_holder(settings: Settings) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert not servers.port_free(port)
        holder = servers.port_holder(port)
        assert holder == "another process" or holder.startswith("PID ")
        chosen = servers.server(Settings(root=settings.root, ports={"auth": port}), registry.get("auth"))
        with pytest.raises(GuardError) as caught:
            servers.check_ports([chosen])
    sentence = str(caught.value)
    assert sentence.startswith(f"Port {port} of the auth dev server is already taken by {holder};")
    assert "devstack.ports.auth" in sentence and "\n" not in sentence
    assert caught.value.code == 3
    assert servers.port_free(port)


def test_taken_sentence_without_permission() -> None:
    chosen = servers.Server("auth-server", registry.get("auth"), (), 8003)
    assert servers.taken_sentence(chosen, "another process").startswith(
        "Port 8003 of the auth dev server is already taken by another process; stop it"
    )


def test_prefix_pads_and_colours() -> None:
    assert servers.prefix("auth-relay", "hello\r\n", 15) == "auth-relay      | hello"
    painted = servers.prefix("auth-relay", "hello", 10, servers.color_of(0, True))
    assert painted == f"{Fore.CYAN}auth-relay |{Style.RESET_ALL} hello"
    assert servers.color_of(0, False) is None


def test_log_sources_by_service_or_process(settings: Settings) -> None:
    names = [n for n, _ in servers.log_sources(settings, "auth")]
    assert names == ["auth-server", "auth-relay"]
    assert [n for n, _ in servers.log_sources(settings, "helpdesk-worker")] == ["helpdesk-worker"]
    assert servers.log_sources(settings)[0][1] == settings.root / "logs" / "auth-server.log"
    with pytest.raises(UsageError, match="No logs of 'nope'"):
        servers.log_sources(settings, "nope")


def test_print_logs_prefixes_each_line(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text("one\ntwo\n", encoding="utf-8")
    lines: list[str] = []
    found = servers.print_logs([("a", first), ("bb", second)], lines.append, color=False)
    assert found == 1
    assert lines == ["a  | one", "a  | two"]


def test_follow_prints_new_complete_lines_and_survives_truncation(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("old\n", encoding="utf-8")
    lines: list[str] = []
    steps = iter(
        [
            lambda: log.write_text("old\nnew\npart", encoding="utf-8"),
            lambda: log.write_text("old\nnew\npartial\n", encoding="utf-8"),
            lambda: log.write_text("again\n", encoding="utf-8"),  # truncated: a new run
        ]
    )

    def keep_going() -> bool:
        step = next(steps, None)
        if step is None:
            return False
        step()
        return True

    servers.follow([("x", log)], lines.append, False, keep_going, poll=0)
    assert lines == ["x | new", "x | partial", "x | again"]
